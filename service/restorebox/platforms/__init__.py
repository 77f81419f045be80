"""Managed platforms (Supabase, RDS, Cloud SQL, Azure): recognising their dumps, preparing
a sandbox the way the platform would, and telling the platform's pieces from the user's."""

from .classify import Classifier
from .detect import detect
from .profiles import PROFILES, Profile

__all__ = ["PROFILES", "Classifier", "Profile", "detect"]
