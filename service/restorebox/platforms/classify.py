"""Tell the platform's pieces from the user's: an error, or a missing object, is the
platform's when what it is about lives in a platform schema, is a platform extension or
role, or is an event trigger (only a platform's superuser makes those)."""

from __future__ import annotations

import re
from dataclasses import dataclass

from restorebox.models import RestoreError
from restorebox.platforms.profiles import Profile

_NAMED = re.compile(r'(?:schema|extension|role|relation|function|type|publication) "?([^"\s(]+)"?')
# Errors no platform can cause but whose object is already there: not a loss.
BENIGN = (re.compile(r'schema "public" already exists'),)


@dataclass(frozen=True)
class Classifier:
    profile: Profile | None
    prepared_schemas: frozenset[str] = frozenset()  # made by restorebox before the restore

    def is_platform_error(self, error: RestoreError) -> bool:
        if any(p.search(error.message) for p in BENIGN):
            return True
        if error.toc_entry and "EVENT TRIGGER" in error.toc_entry:
            return True
        if (error.statement or "").lstrip().upper().startswith("CREATE EVENT TRIGGER"):
            return True
        if self.profile is None:
            return False
        names = self._names(error.message, error.toc_entry)
        return bool(
            names & self.profile.schemas
            or names & self.profile.extensions
            or names & self.profile.role_names
            or names & self.profile.other_names
            or names & self.prepared_schemas
        )

    def is_platform_schema(self, schema: str) -> bool:
        return self.profile is not None and schema in self.profile.schemas

    @staticmethod
    def _names(message: str, toc_entry: str | None) -> set[str]:
        """What the error is about: the names its message quotes (a schema's name for a
        qualified one), and the schema of its archive entry."""
        names = {m.group(1) for m in _NAMED.finditer(message)}
        names |= {n.split(".")[0] for n in names}
        if toc_entry and (entry := re.match(r"\d+; [A-Z ]+? (\S+) ", toc_entry)):
            names.add(entry.group(1))
        return names
