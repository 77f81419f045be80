"""Prepare a sandbox the way a platform's database is before its dumps restore: its roles
with their attributes and memberships, and (Supabase) the auth helpers that policies call,
when the dump uses the platform's schema without carrying it."""

from __future__ import annotations

from typing import Any

import psycopg
from psycopg import sql

from restorebox.backups.model import Backup
from restorebox.platforms.profiles import Profile

# auth.uid(), auth.role(), auth.email(), auth.jwt(): what PostgREST-style requests set
# (request.jwt.claim.* or request.jwt.claims), NULL when nothing is set.
AUTH_HELPERS = """
CREATE SCHEMA IF NOT EXISTS auth;
CREATE OR REPLACE FUNCTION auth.jwt() RETURNS jsonb LANGUAGE sql STABLE AS $$
    SELECT coalesce(nullif(current_setting('request.jwt.claim', true), ''),
                    nullif(current_setting('request.jwt.claims', true), ''))::jsonb
$$;
CREATE OR REPLACE FUNCTION auth.uid() RETURNS uuid LANGUAGE sql STABLE AS $$
    SELECT coalesce(nullif(current_setting('request.jwt.claim.sub', true), ''),
                    auth.jwt() ->> 'sub')::uuid
$$;
CREATE OR REPLACE FUNCTION auth.role() RETURNS text LANGUAGE sql STABLE AS $$
    SELECT coalesce(nullif(current_setting('request.jwt.claim.role', true), ''),
                    auth.jwt() ->> 'role')::text
$$;
CREATE OR REPLACE FUNCTION auth.email() RETURNS text LANGUAGE sql STABLE AS $$
    SELECT coalesce(nullif(current_setting('request.jwt.claim.email', true), ''),
                    auth.jwt() ->> 'email')::text
$$;
GRANT USAGE ON SCHEMA auth TO anon, authenticated, service_role;
GRANT EXECUTE ON ALL FUNCTIONS IN SCHEMA auth TO anon, authenticated, service_role;
"""
HELPERS = ["auth.uid()", "auth.role()", "auth.email()", "auth.jwt()"]

# Database webhooks: triggers call supabase_functions.http_request(url, method, headers,
# params, timeout_ms). Here it queues the request with pg_net, which never sends it.
WEBHOOKS = """
CREATE EXTENSION IF NOT EXISTS pg_net;
CREATE SCHEMA IF NOT EXISTS supabase_functions;
CREATE OR REPLACE FUNCTION supabase_functions.http_request() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    url text := TG_ARGV[0];
    method text := upper(coalesce(TG_ARGV[1], 'POST'));
    headers jsonb := coalesce(nullif(TG_ARGV[2], '')::jsonb, '{}');
    params jsonb := coalesce(nullif(TG_ARGV[3], '')::jsonb, '{}');
    timeout_ms integer := coalesce(nullif(TG_ARGV[4], '')::integer, 1000);
    payload jsonb := jsonb_build_object(
        'type', TG_OP, 'table', TG_TABLE_NAME, 'schema', TG_TABLE_SCHEMA,
        'record', CASE WHEN TG_OP = 'DELETE' THEN NULL ELSE to_jsonb(NEW) END,
        'old_record', CASE WHEN TG_OP = 'INSERT' THEN NULL ELSE to_jsonb(OLD) END);
BEGIN
    IF method = 'GET' THEN
        PERFORM net.http_get(url, params, headers, timeout_ms);
    ELSE
        PERFORM net.http_post(url, payload, params, headers, timeout_ms);
    END IF;
    RETURN coalesce(NEW, OLD);
END $$;
"""


def prepare(
    conn: psycopg.Connection[Any],
    profile: Profile,
    backups: tuple[Backup, ...],
    platform_image: bool = False,
) -> tuple[list[str], list[str]]:
    """Create the platform's roles, base schemas and helpers; return (roles created,
    schemas and helpers created). In the platform's own image only missing roles are made:
    its schemas, helpers and extensions are the real ones."""
    existing = {row[0] for row in conn.execute("SELECT rolname FROM pg_roles")}
    created: list[str] = []
    for role in profile.roles:
        if role.name not in existing:
            conn.execute(
                sql.SQL("CREATE ROLE {} " + role.attributes).format(sql.Identifier(role.name))
            )
            created.append(role.name)
    for role in profile.roles:
        for group in role.member_of:
            conn.execute(
                sql.SQL("GRANT {} TO {}").format(sql.Identifier(group), sql.Identifier(role.name))
            )
    declared = {o.name for b in backups for o in b.objects if o.kind == "SCHEMA"}
    made: list[str] = []
    if platform_image:
        return created, made
    for schema in profile.base_schemas:
        if schema not in declared:
            conn.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(schema)))
            made.append(f"schema {schema}")
    if profile.helpers and "auth" not in declared:
        conn.execute(AUTH_HELPERS)
        made += HELPERS
    mentioned = {m for b in backups for m in b.mentions}
    if (
        profile.helpers
        and "supabase_functions" in mentioned
        and "supabase_functions" not in declared
        and _available(conn, "pg_net")
    ):
        conn.execute(WEBHOOKS)
        made += ["schema supabase_functions", "supabase_functions.http_request()"]
    return created, made


def _available(conn: psycopg.Connection[Any], extension: str) -> bool:
    row = conn.execute(
        "SELECT EXISTS (SELECT FROM pg_available_extensions WHERE name = %s)", (extension,)
    ).fetchone()
    return bool(row and row[0])


def stand_ins_in_use(conn: psycopg.Connection[Any]) -> list[str]:
    """Extensions of the sandbox that are restorebox's stand-ins."""
    rows = conn.execute(
        "SELECT e.extname FROM pg_extension e JOIN pg_available_extensions a"
        " ON a.name = e.extname WHERE a.comment LIKE 'restorebox stand-in%' ORDER BY 1"
    ).fetchall()
    return [row[0] for row in rows]


def prepared_schemas(made: list[str]) -> frozenset[str]:
    """The schemas ``prepare`` made (what it reported, read back)."""
    schemas = {m.removeprefix("schema ") for m in made if m.startswith("schema ")}
    if any(m.startswith("auth.") for m in made):
        schemas.add("auth")
    return frozenset(schemas)
