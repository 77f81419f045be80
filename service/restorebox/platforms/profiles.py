"""What each managed platform puts in a database beside the user's objects: its roles
(with their attributes), schemas and extensions, from the platforms' public docs."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class RoleSpec:
    name: str
    attributes: str = "NOLOGIN"
    member_of: tuple[str, ...] = ()


@dataclass(frozen=True)
class Profile:
    name: str
    description: str
    roles: tuple[RoleSpec, ...]
    schemas: frozenset[str] = frozenset()  # objects here are the platform's
    extensions: frozenset[str] = frozenset()  # the platform provides these
    stand_ins: frozenset[str] = frozenset()  # restorebox's images stand in for these
    markers: frozenset[str] = field(default_factory=frozenset)  # roles that give it away
    helpers: bool = False  # create auth.uid() and friends when the dump lacks them
    # Schemas the platform always has, made before the restore when the dump lacks them.
    base_schemas: tuple[str, ...] = ()
    other_names: frozenset[str] = frozenset()  # publications and the like
    # Objects the platform's extensions make ("VIEW vault.decrypted_secrets"). Some
    # versions of the platform leave them outside the extension, so its dumps carry them
    # too: the dump's definition then replaces the stand-in's (see restore/translate).
    provided: frozenset[str] = frozenset()

    @property
    def role_names(self) -> frozenset[str]:
        return frozenset(r.name for r in self.roles)


_SUPABASE_ADMINS = ("supabase_auth_admin", "supabase_storage_admin", "supabase_functions_admin")

SUPABASE = Profile(
    name="supabase",
    description="Supabase: API roles, platform admins, auth/storage/realtime schemas, "
    "pg_graphql, pgsodium, supabase_vault, pg_net, pgjwt, pgmq",
    roles=(
        RoleSpec("anon", "NOLOGIN NOINHERIT"),
        RoleSpec("authenticated", "NOLOGIN NOINHERIT"),
        RoleSpec("service_role", "NOLOGIN NOINHERIT BYPASSRLS"),
        RoleSpec("authenticator", "LOGIN NOINHERIT", ("anon", "authenticated", "service_role")),
        RoleSpec("supabase_admin", "NOLOGIN SUPERUSER CREATEROLE CREATEDB REPLICATION BYPASSRLS"),
        *(RoleSpec(name, "NOLOGIN NOINHERIT CREATEROLE") for name in _SUPABASE_ADMINS),
        RoleSpec("supabase_realtime_admin", "NOLOGIN NOINHERIT"),
        RoleSpec("supabase_replication_admin", "NOLOGIN REPLICATION"),
        RoleSpec("supabase_read_only_user", "NOLOGIN BYPASSRLS"),
        RoleSpec("dashboard_user", "NOLOGIN CREATEROLE CREATEDB REPLICATION"),
        RoleSpec("pgbouncer", "NOLOGIN"),
        RoleSpec("pgsodium_keyiduser", "NOLOGIN"),
        RoleSpec("pgsodium_keyholder", "NOLOGIN", ("pgsodium_keyiduser",)),
        RoleSpec("pgsodium_keymaker", "NOLOGIN", ("pgsodium_keyholder",)),
    ),
    schemas=frozenset(
        {
            "auth",
            "storage",
            "realtime",
            "_realtime",
            "extensions",
            "graphql",
            "graphql_public",
            "vault",
            "pgsodium",
            "pgsodium_masks",
            "net",
            "supabase_functions",
            "supabase_migrations",
            "pgbouncer",
            "cron",
            "_analytics",
        }
    ),
    extensions=frozenset(
        {
            "pg_graphql",
            "pgsodium",
            "supabase_vault",
            "pg_net",
            "pgjwt",
            "pg_stat_statements",
            "pg_cron",
            "pgaudit",
            "wrappers",
            "pg_tle",
            "plv8",
            "pg_jsonschema",
            "pg_hashids",
            "index_advisor",
            "pg_stat_monitor",
            "pgroonga",
            "rum",
            "pgrouting",
            "pgmq",
        }
    ),
    # timescaledb is not among them: a hypertable's rows live in the extension's chunks,
    # so without it the user's data is lost, not a platform piece (see restore/extensions).
    stand_ins=frozenset({"pg_graphql", "pgsodium", "supabase_vault", "pg_net", "pgjwt", "pgmq"}),
    markers=frozenset(
        {
            "supabase_admin",
            "supabase_auth_admin",
            "supabase_storage_admin",
            "authenticator",
            "supabase_functions_admin",
            "supabase_realtime_admin",
            "dashboard_user",
        }
    ),
    helpers=True,
    # Where its extensions live: CREATE EXTENSION ... WITH SCHEMA needs them to exist.
    base_schemas=("extensions", "graphql", "vault", "pgsodium"),
    other_names=frozenset({"supabase_realtime", "supabase_realtime_messages_publication"}),
    # Before supabase_vault 0.3, pgsodium made the decrypted view, so dumps of those
    # projects carry it; later ones do not. Tools that detach pgmq's tables for logical
    # backups leave its catalogue in the dump too.
    provided=frozenset(
        {
            "VIEW vault.decrypted_secrets",
            "FUNCTION vault.create_secret",
            "FUNCTION vault.update_secret",
            "VIEW pgsodium.valid_key",
            "FUNCTION pgsodium.create_key",
            "TABLE pgmq.meta",
        }
    ),
)

RDS = Profile(
    name="rds",
    description="Amazon RDS / Aurora: rds_superuser and the rds_* roles",
    roles=(
        RoleSpec("rds_superuser", "NOLOGIN CREATEROLE CREATEDB"),
        RoleSpec("rdsadmin", "NOLOGIN SUPERUSER"),
        RoleSpec("rds_replication", "NOLOGIN"),
        RoleSpec("rds_iam", "NOLOGIN"),
        RoleSpec("rds_password", "NOLOGIN"),
        RoleSpec("rdstopmgr", "NOLOGIN"),
    ),
    extensions=frozenset({"aws_commons", "aws_s3", "aws_lambda", "rds_tools", "apg_plan_mgmt"}),
    markers=frozenset({"rds_superuser", "rdsadmin", "rds_iam", "rds_replication"}),
)

CLOUDSQL = Profile(
    name="cloudsql",
    description="Google Cloud SQL: cloudsqlsuperuser and the cloudsql* roles",
    roles=(
        RoleSpec("cloudsqlsuperuser", "NOLOGIN CREATEROLE CREATEDB"),
        RoleSpec("cloudsqladmin", "NOLOGIN SUPERUSER"),
        RoleSpec("cloudsqlagent", "NOLOGIN"),
        RoleSpec("cloudsqlreplica", "NOLOGIN REPLICATION"),
        RoleSpec("cloudsqliamuser", "NOLOGIN"),
        RoleSpec("cloudsqliamserviceaccount", "NOLOGIN"),
    ),
    extensions=frozenset({"google_ml_integration", "google_columnar_engine"}),
    markers=frozenset({"cloudsqlsuperuser", "cloudsqladmin", "cloudsqliamuser"}),
)

AZURE = Profile(
    name="azure",
    description="Azure Database for PostgreSQL: azure_pg_admin and azure_superuser",
    roles=(
        RoleSpec("azure_pg_admin", "NOLOGIN CREATEROLE CREATEDB"),
        RoleSpec("azure_superuser", "NOLOGIN SUPERUSER"),
        RoleSpec("azuresu", "NOLOGIN SUPERUSER"),
        RoleSpec("replication", "NOLOGIN REPLICATION"),
    ),
    schemas=frozenset({"azure", "query_store"}),
    extensions=frozenset({"azure", "pg_qs", "azure_storage", "azure_ai", "pgms_wait_sampling"}),
    markers=frozenset({"azure_pg_admin", "azure_superuser", "azuresu"}),
)

HEROKU = Profile(
    name="heroku",
    description="Heroku Postgres: extensions in the heroku_ext schema, heroku_admin",
    roles=(RoleSpec("heroku_admin", "NOLOGIN SUPERUSER"),),
    # Since 2022 Heroku puts extensions in heroku_ext, which dumps name but never make.
    base_schemas=("heroku_ext",),
    markers=frozenset({"heroku_admin"}),
)

NEON = Profile(
    name="neon",
    description="Neon: neon_superuser (the role users' roles are granted) and cloud_admin",
    roles=(
        RoleSpec("neon_superuser", "NOLOGIN CREATEROLE CREATEDB BYPASSRLS"),
        RoleSpec("cloud_admin", "NOLOGIN SUPERUSER"),
    ),
    extensions=frozenset({"neon", "neon_utils"}),
    markers=frozenset({"neon_superuser", "cloud_admin"}),
)

PROFILES: dict[str, Profile] = {p.name: p for p in (SUPABASE, RDS, CLOUDSQL, AZURE, HEROKU, NEON)}
