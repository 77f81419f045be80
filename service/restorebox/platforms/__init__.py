"""Managed platforms (Supabase, RDS, Cloud SQL, Azure): recognising their dumps, preparing
a sandbox the way the platform would, and telling the platform's pieces from the user's."""

from restorebox.platforms.classify import Classifier
from restorebox.platforms.detect import detect
from restorebox.platforms.profiles import PROFILES, Profile

__all__ = ["PROFILES", "Classifier", "Profile", "detect"]
