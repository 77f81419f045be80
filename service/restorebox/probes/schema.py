"""Probes on the schema: declared objects, validity, triggers, RLS, extensions, matviews."""

from __future__ import annotations

from collections import Counter
from typing import Any

from restorebox.backups.model import DeclaredObject
from restorebox.probes.base import Context, Outcome, first

# kind -> query returning (schema, name, table) of what exists in the sandbox
EXISTING: dict[str, str] = {
    "TABLE": "SELECT n.nspname, c.relname, NULL FROM pg_class c JOIN pg_namespace n "
    "ON n.oid = c.relnamespace WHERE c.relkind IN ('r', 'p', 'f')",
    "VIEW": "SELECT schemaname, viewname, NULL FROM pg_views",
    "MATERIALIZED VIEW": "SELECT schemaname, matviewname, NULL FROM pg_matviews",
    "SEQUENCE": "SELECT schemaname, sequencename, NULL FROM pg_sequences",
    "FUNCTION": "SELECT n.nspname, p.proname, NULL FROM pg_proc p JOIN pg_namespace n "
    "ON n.oid = p.pronamespace",
    "INDEX": "SELECT schemaname, indexname, tablename FROM pg_indexes",
    "TRIGGER": "SELECT n.nspname, t.tgname, c.relname FROM pg_trigger t JOIN pg_class c "
    "ON c.oid = t.tgrelid JOIN pg_namespace n ON n.oid = c.relnamespace "
    "WHERE NOT t.tgisinternal",
    "POLICY": "SELECT schemaname, policyname, tablename FROM pg_policies",
    "CONSTRAINT": "SELECT n.nspname, con.conname, c.relname FROM pg_constraint con JOIN "
    "pg_class c ON c.oid = con.conrelid JOIN pg_namespace n ON n.oid = "
    "c.relnamespace",
    "EXTENSION": "SELECT extname, extname, NULL FROM pg_extension",
    "SCHEMA": "SELECT nspname, nspname, NULL FROM pg_namespace",
    "ROW SECURITY": "SELECT n.nspname, c.relname, c.relname FROM pg_class c JOIN "
    "pg_namespace n ON n.oid = c.relnamespace WHERE c.relrowsecurity",
}
EXISTING["PROCEDURE"] = EXISTING["FUNCTION"]
EXISTING["FK CONSTRAINT"] = EXISTING["CONSTRAINT"]


def _missing(ctx: Context, declared: list[DeclaredObject]) -> tuple[list[DeclaredObject], int]:
    present: dict[str, set[tuple[str, str]]] = {}
    missing = []
    for obj in declared:
        if obj.kind not in EXISTING:
            continue
        if obj.kind not in present:
            present[obj.kind] = {(s, n) for s, n, _ in ctx.rows(EXISTING[obj.kind])}
        if (obj.namespace, obj.name) not in present[obj.kind]:
            missing.append(obj)
    return missing, sum(1 for o in declared if o.kind in EXISTING)


def _describe(obj: DeclaredObject) -> str:
    on = f" on {obj.table}" if obj.table and obj.table != obj.name else ""
    return f"{obj.kind.lower()} {obj.namespace}.{obj.name}{on}"


def object_parity(ctx: Context) -> Outcome:
    declared = [o for o in ctx.declared if o.kind not in ("EXTENSION", "ROW SECURITY")]
    missing, checked = _missing(ctx, declared)
    user = [o for o in missing if not ctx.is_platform(o)]
    platform = [o for o in missing if ctx.is_platform(o)]
    by_kind = Counter(f"{o.namespace}:{o.kind}" for o in declared if o.kind in EXISTING)
    missing_by_kind = Counter(f"{o.namespace}:{o.kind}" for o in missing)
    data: dict[str, Any] = {
        "declared": checked,
        "missing": [_describe(o) for o in first(user, 50)],
        "platform_missing": [_describe(o) for o in first(platform, 50)],
        "declared_by_schema_kind": dict(sorted(by_kind.items())),
        "missing_by_schema_kind": dict(sorted(missing_by_kind.items())),
    }
    if user:
        return Outcome(
            "fail",
            f"{len(user)} of {checked} objects the backup declares are "
            f"missing: {', '.join(data['missing'][:5])}",
            data,
        )
    if platform:
        return Outcome(
            "warn",
            f"all your objects exist; {len(platform)} platform objects could not be made: "
            f"{', '.join(data['platform_missing'][:5])}",
            data,
        )
    return Outcome("pass", f"all {checked} declared objects exist", data)


def constraints_not_validated(ctx: Context) -> Outcome:
    rows = ctx.rows(
        "SELECT n.nspname || '.' || c.relname, con.conname FROM pg_constraint con "
        "JOIN pg_class c ON c.oid = con.conrelid JOIN pg_namespace n ON n.oid = "
        "c.relnamespace WHERE NOT con.convalidated ORDER BY 1, 2"
    )
    data = {"not_validated": [f"{t}.{n}" for t, n in first(rows, 50)]}
    if rows:
        return Outcome(
            "warn",
            f"{len(rows)} constraints are NOT VALID (existing rows were "
            "never checked against them)",
            data,
        )
    return Outcome("pass", "every constraint is validated", data)


def invalid_indexes(ctx: Context) -> Outcome:
    rows = ctx.rows(
        "SELECT i.indexrelid::regclass::text FROM pg_index i WHERE NOT "
        "i.indisvalid OR NOT i.indisready ORDER BY 1"
    )
    data = {"invalid": [r[0] for r in first(rows, 50)]}
    if rows:
        return Outcome(
            "fail",
            f"{len(rows)} indexes are invalid or not ready: {', '.join(data['invalid'][:5])}",
            data,
        )
    return Outcome("pass", "every index is valid and ready", data)


def triggers_disabled(ctx: Context) -> Outcome:
    rows = ctx.rows(
        "SELECT t.tgrelid::regclass::text, t.tgname FROM pg_trigger t WHERE NOT "
        "t.tgisinternal AND t.tgenabled = 'D' ORDER BY 1, 2"
    )
    settings = ctx.rows(
        "SELECT coalesce(d.datname, '*'), coalesce(r.rolname, '*'), s.setconfig "
        "FROM pg_db_role_setting s LEFT JOIN pg_database d ON d.oid = "
        "s.setdatabase LEFT JOIN pg_roles r ON r.oid = s.setrole"
    )
    replica = [
        f"{db}/{role}"
        for db, role, config in settings
        if any(c.startswith("session_replication_role=") for c in config or [])
    ]
    data = {"disabled": [f"{t}.{n}" for t, n in first(rows, 50)], "replica_settings": replica}
    if replica:
        return Outcome(
            "fail",
            "session_replication_role is set persistently for "
            f"{', '.join(replica)}: triggers and foreign keys do not fire",
            data,
        )
    if rows:
        return Outcome(
            "warn", f"{len(rows)} triggers are disabled: {', '.join(data['disabled'][:5])}", data
        )
    return Outcome("pass", "no trigger is disabled", data)


def rls(ctx: Context) -> Outcome:
    unprotected = ctx.rows(
        "SELECT n.nspname || '.' || c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = "
        "c.relnamespace WHERE c.relrowsecurity AND NOT EXISTS (SELECT FROM pg_policy p WHERE "
        "p.polrelid = c.oid) ORDER BY 1"
    )
    # A platform's own tables are its business (Supabase's storage.objects, say).
    unprotected = [
        r for r in unprotected if not ctx.platform.is_platform_schema(r[0].split(".")[0])
    ]
    declared = [o for o in ctx.declared if o.kind in ("POLICY", "ROW SECURITY")]
    found_missing, _ = _missing(ctx, declared)
    # Policies on a platform's own tables that could not be made (storage.objects of a
    # Supabase migration restored without the platform's storage) are platform gaps.
    missing = [o for o in found_missing if not ctx.is_platform(o)]
    platform = [o for o in found_missing if ctx.is_platform(o)]
    data = {
        "rls_without_policy": [r[0] for r in unprotected],
        "missing": [_describe(o) for o in missing],
        "platform_missing": [_describe(o) for o in platform],
    }
    if missing:
        return Outcome(
            "fail",
            f"{len(missing)} row-security policies or settings of the "
            f"backup are missing: {', '.join(data['missing'][:5])}",
            data,
        )
    if platform:
        return Outcome(
            "warn",
            f"your policies are all there; {len(platform)} on the platform's own tables "
            f"could not be made: {', '.join(data['platform_missing'][:5])}",
            data,
        )
    if unprotected:
        return Outcome(
            "warn",
            f"{len(unprotected)} tables enable row security without any "
            f"policy (nobody but owners sees rows): "
            f"{', '.join(data['rls_without_policy'][:5])}",
            data,
        )
    policies = ctx.rows("SELECT count(*) FROM pg_policy")[0][0]
    return Outcome("pass", f"{policies} policies in place; every RLS table has one", data)


def extensions(ctx: Context) -> Outcome:
    declared = [o for o in ctx.declared if o.kind == "EXTENSION"]
    missing, _ = _missing(ctx, declared)
    stand_ins = ctx.report.platform.stand_ins if ctx.report and ctx.report.platform else []
    user = sorted({o.name for o in missing if not ctx.is_platform(o)})
    platform = sorted({o.name for o in missing if ctx.is_platform(o)})
    data = {
        "declared": sorted({o.name for o in declared}),
        "missing": user,
        "platform_missing": platform,
        "stand_ins": stand_ins,
    }
    if user:
        return Outcome("fail", f"extensions the backup needs are missing: {', '.join(user)}", data)
    if platform or stand_ins:
        parts = []
        if stand_ins:
            parts.append(f"stood in for by restorebox: {', '.join(stand_ins)}")
        if platform:
            parts.append(f"platform extensions not available: {', '.join(platform)}")
        return Outcome("warn", "; ".join(parts), data)
    return Outcome("pass", f"all {len(data['declared'])} extensions present", data)


def matviews_unpopulated(ctx: Context) -> Outcome:
    rows = ctx.rows(
        "SELECT schemaname || '.' || matviewname FROM pg_matviews WHERE NOT ispopulated ORDER BY 1"
    )
    data = {"unpopulated": [r[0] for r in rows]}
    if rows and not any(b.content in ("data", "complete") for b in ctx.backups):
        return Outcome("pass", "schema-only restore: materialized views have no data to hold", data)
    if rows:
        return Outcome(
            "warn",
            f"{len(rows)} materialized views are not populated (REFRESH "
            f"them before use): {', '.join(data['unpopulated'][:5])}",
            data,
        )
    return Outcome("pass", "every materialized view is populated", data)
