"""The registry of probes, by name, in the order they run."""

from __future__ import annotations

from restorebox.probes import checks, data, leaks, schema
from restorebox.probes.base import Probe

_ALL = [
    Probe("restore_errors", "errors reported by psql / pg_restore", checks.restore_errors),
    Probe("row_parity", "rows per table equal the rows the backup carries", data.row_parity),
    Probe("object_parity", "every object the backup declares exists", schema.object_parity),
    Probe(
        "fk_orphans",
        "rows whose referenced row is missing (anti-join per foreign key)",
        data.fk_orphans,
    ),
    Probe(
        "constraints_not_validated",
        "constraints marked NOT VALID",
        schema.constraints_not_validated,
    ),
    Probe("invalid_indexes", "indexes that are invalid or not ready", schema.invalid_indexes),
    Probe(
        "triggers_disabled",
        "triggers left disabled, replica mode left on",
        schema.triggers_disabled,
    ),
    Probe(
        "sequence_lag",
        "owned and identity sequences behind their column's maximum",
        data.sequence_lag,
    ),
    Probe("rls", "row security without policies; policies of the backup missing", schema.rls),
    Probe("extensions", "extensions the backup needs that the sandbox lacks", schema.extensions),
    Probe(
        "matviews_unpopulated", "materialized views left unpopulated", schema.matviews_unpopulated
    ),
    Probe("empty_data", "a backup that should carry data but yields no rows", data.empty_data),
    Probe(
        "amcheck", "btree and heap consistency (amcheck), within the time budget", checks.amcheck
    ),
]
# Not one to choose: it runs on every masked sandbox (after the others), and on no other.
MASKING_LEAKS = Probe(
    "masking_leaks",
    "original values of masked columns searched for in every text column and file",
    leaks.masking_leaks,
)
PROBES: dict[str, Probe] = {p.name: p for p in _ALL}
