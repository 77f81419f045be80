"""Which managed platform made a dump: from the roles it names and the schemas and
extensions it declares. Nothing is guessed from file names."""

from __future__ import annotations

from restorebox.backups.model import Backup
from restorebox.platforms.profiles import PROFILES, SUPABASE, Profile

_SUPABASE_SCHEMAS = {"auth", "storage", "graphql_public", "supabase_functions", "realtime"}
_API_ROLES = {"anon", "authenticated", "service_role"}


def detect(backups: list[Backup] | tuple[Backup, ...]) -> tuple[Profile | None, list[str]]:
    """The platform and the evidence for it (for the report), or (None, [])."""
    roles = {r for b in backups for r in b.roles}
    schemas = {o.name for b in backups for o in b.objects if o.kind == "SCHEMA"}
    extensions = {o.name for b in backups for o in b.objects if o.kind == "EXTENSION"}
    mentioned = {m for b in backups for m in b.mentions}
    best: tuple[int, Profile | None, list[str]] = (0, None, [])
    for profile in PROFILES.values():
        evidence = [f"role {r}" for r in sorted(roles & profile.markers)]
        evidence += [f"extension {e}" for e in sorted(extensions & profile.stand_ins)]
        # A platform schema the dump uses without making it (heroku_ext).
        evidence += [
            f"schema {s}" for s in sorted((mentioned - schemas) & set(profile.base_schemas))
        ]
        if profile is SUPABASE:
            evidence += [f"schema {s}" for s in sorted(schemas & _SUPABASE_SCHEMAS)]
            if roles >= _API_ROLES:
                evidence.append("roles anon, authenticated, service_role")
        else:
            evidence += [f"extension {e}" for e in sorted(extensions & profile.extensions)]
        if len(evidence) > best[0]:
            best = (len(evidence), profile, evidence)
    return best[1], best[2]
