"""Extensions a backup creates that the chosen image does not have.

Each restorebox image carries the names of its extensions in a label, written when it
is built. A backup that creates an extension missing from that list, and that no
platform profile accounts for (a platform's own extensions, or restorebox's stand-ins
for them), would restore without the objects and rows that live in it (a TimescaleDB
hypertable's rows are in the extension's chunks). Under ``on_error=stop`` that is
refused before any container starts, naming what is missing and what fixes it; under
``continue`` the restore goes on and the ``extensions`` probe fails, naming it. Images
without the label (an operator's registry image) are not checked ahead: the restore
finds out, and its hint names the extension."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

from restorebox.errors import ExtensionUnavailable
from restorebox.restore.plan import RestorePlan

LABEL = "restorebox.extensions"
# What a user would look for, for the extensions people most often miss.
KNOWN_AS = {
    "timescaledb": "TimescaleDB",
    "citus": "Citus",
    "pg_search": "ParadeDB pg_search",
    "vectorscale": "pgvectorscale",
    "age": "Apache AGE",
}


def image_extensions(labels: dict[str, str]) -> frozenset[str] | None:
    """The extensions an image says it has; None when it does not say."""
    listed = labels.get(LABEL)
    if listed is None:
        return None
    return frozenset(name.strip() for name in listed.split(",") if name.strip())


def missing_extensions(plan: RestorePlan, available: frozenset[str]) -> list[str]:
    """Extensions the plan's backups create that neither the image nor the plan's
    platform profile provides."""
    accounted = plan.profile.extensions if plan.profile else frozenset()
    wanted = {o.name for b in plan.backups for o in b.objects if o.kind == "EXTENSION"}
    return sorted(wanted - available - accounted - {"plpgsql"})


def follow_extensions(
    plan: RestorePlan,
    configured: list[int],
    requested: int | None,
    labels_of: Callable[[int], tuple[str, dict[str, str]]],
) -> RestorePlan:
    """The plan on the nearest newer major whose image has the extensions the backups
    create, when the version rule's image lacks one (a pg_dump 15 file using pgvector,
    which the 15 image does not carry); the plan as it is when a major was asked for,
    when nothing is missing, or when no newer image has them all (``check_extensions``
    then refuses it, naming what is missing)."""
    if requested is not None or not plan.backups:
        return plan
    image, labels = labels_of(plan.major)
    available = image_extensions(labels)
    missing = missing_extensions(plan, available) if available is not None else []
    if not missing:
        return plan
    for major in sorted(m for m in configured if m > plan.major):
        newer, newer_labels = labels_of(major)
        has = image_extensions(newer_labels)
        if has is not None and not missing_extensions(plan, has):
            why = (
                f"PostgreSQL {major} ({newer}) chosen instead of {plan.major}: the backup "
                f"creates {', '.join(missing)}, which {image} does not have"
            )
            return replace(plan, major=major, warnings=(*plan.warnings, why))
    return plan


def check_extensions(plan: RestorePlan, image: str, labels: dict[str, str], on_error: str) -> None:
    """Raise ExtensionUnavailable when the backups need what ``image`` lacks."""
    available = image_extensions(labels)
    if available is None or on_error != "stop":
        return
    missing = missing_extensions(plan, available)
    if not missing:
        return
    named = ", ".join(
        f"{KNOWN_AS[name]} ({name})" if name in KNOWN_AS else name for name in missing
    )
    raise ExtensionUnavailable(
        f"the backup creates the extension{'s' if len(missing) > 1 else ''} {named}, which "
        f"the PostgreSQL {plan.major} image {image} does not have: the objects and rows "
        "that live in it would not restore. Configure an image that has it for "
        f'PostgreSQL {plan.major} (RESTOREBOX_IMAGES=\'{{"{plan.major}": "<image>"}}\'), '
        'or ask with "on_error": "continue" to restore the rest and see what is lost',
        extensions=missing,
        image=image,
    )
