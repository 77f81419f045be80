"""Platform detection and classification, on descriptions and errors."""

from __future__ import annotations

from pathlib import Path

from restorebox.backups.model import Backup, DeclaredObject
from restorebox.models import RestoreError
from restorebox.platforms import PROFILES, Classifier, detect


def backup(roles: list[str], schemas: list[str] = [], extensions: list[str] = []) -> Backup:  # noqa: B006
    objects = [DeclaredObject(kind="SCHEMA", namespace=s, name=s) for s in schemas]
    objects += [DeclaredObject(kind="EXTENSION", namespace=e, name=e) for e in extensions]
    return Backup(
        name="b.sql", format="plain", compression="none", content="complete", size_bytes=1,
        sha256="0", roles=roles, objects=objects, path=Path("/x"),
    )  # fmt: skip


def test_detection_reads_roles_schemas_and_extensions() -> None:
    profile, evidence = detect(
        [backup(["anon", "authenticated", "service_role"], [], ["pg_graphql"])]
    )
    assert profile is PROFILES["supabase"]
    assert evidence == ["extension pg_graphql", "roles anon, authenticated, service_role"]
    profile, evidence = detect([backup(["rds_superuser", "app"])])
    assert profile is PROFILES["rds"]
    assert detect([backup(["app_owner"], ["public"], ["pgcrypto"])]) == (None, [])
    assert detect([backup(["cloudsqlsuperuser"])])[0] is PROFILES["cloudsql"]
    assert detect([backup(["azure_pg_admin"])])[0] is PROFILES["azure"]


def error(message: str, toc: str | None = None, statement: str | None = None) -> RestoreError:
    return RestoreError(backup="b", message=message, toc_entry=toc, statement=statement)


def test_errors_about_platform_pieces_are_the_platforms() -> None:
    supabase = Classifier(PROFILES["supabase"])
    assert supabase.is_platform_error(error('relation "auth.users" does not exist'))
    assert supabase.is_platform_error(error('role "supabase_admin" does not exist'))
    assert supabase.is_platform_error(error('extension "wrappers" is not available'))
    assert supabase.is_platform_error(error('publication "supabase_realtime" does not exist'))
    assert supabase.is_platform_error(
        error("function supabase_functions.http_request() does not exist")
    )
    assert supabase.is_platform_error(error("x", toc="3361; TABLE pgsodium key"))
    assert supabase.is_platform_error(error("permission denied", toc="12; EVENT TRIGGER - t"))
    # The user's own troubles stay the user's.
    assert not supabase.is_platform_error(error('relation "public.orders" does not exist'))
    assert not supabase.is_platform_error(
        error('duplicate key value violates unique constraint "orders_pkey"')
    )
    assert not supabase.is_platform_error(error("x", toc="3400; FK CONSTRAINT public o o_fkey"))
    # Without a profile only what no platform causes is benign.
    plain = Classifier(None)
    assert plain.is_platform_error(error('schema "public" already exists'))
    assert not plain.is_platform_error(error('relation "auth.users" does not exist'))


def test_an_operators_platform_image_is_used_for_that_platforms_dumps(tmp_path: Path) -> None:
    from restorebox.settings import Settings

    settings = Settings(
        state_dir=tmp_path,
        profile_images={"supabase": {15: "registry.example/supabase/postgres:15.8"}},
    )
    assert settings.image_for(15, "supabase") == ("registry.example/supabase/postgres:15.8", True)
    assert settings.image_for(17, "supabase") == ("restorebox/postgres:17", False)
    assert settings.image_for(15, None) == ("restorebox/postgres:15", False)
