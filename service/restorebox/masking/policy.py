"""A masking policy: which columns of which tables get which strategy, and whether a
column that looks personal but is not covered fails the sandbox (``strict``).

It comes from the create request (``"masking"``: an object, the name of a YAML file in
the backups folder, or ``"none"``) and from the PostgreSQL Anonymizer labels in the
dump: a dump whose owner declared columns personal is masked by default. Everything is
checked against the columns the dump declares before any container starts."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from restorebox.backups.model import Backup
from restorebox.errors import MaskingPolicyInvalid
from restorebox.masking.labels import strategy_for
from restorebox.masking.strategies import Strategy, parse_strategy

if TYPE_CHECKING:
    from restorebox.restore.plan import RestorePlan

NONE = "none"
POLICY_SUFFIXES = (".yaml", ".yml", ".json")
MAX_POLICY_BYTES = 1024 * 1024


class PolicyDocument(BaseModel):
    """What a user writes (inline or in a file)."""

    model_config = ConfigDict(extra="forbid")

    tables: dict[str, dict[str, str]] = Field(default_factory=dict)
    strict: bool = False


class MaskingPolicy(BaseModel):
    """The resolved policy a sandbox is masked with (kept on its record)."""

    # "schema.table" -> column -> strategy text ("email", "partial:4")
    tables: dict[str, dict[str, str]] = Field(default_factory=dict)
    strict: bool = False
    source: str  # "request", "file masking.yaml", "anon labels", joined with " + "
    from_labels: list[str] = Field(default_factory=list)  # "schema.table.column"
    labels_not_understood: list[str] = Field(default_factory=list)  # "t.c: label"

    def strategies(self) -> dict[tuple[str, str], Strategy]:
        return {
            (table, column): parse_strategy(text)
            for table, columns in self.tables.items()
            for column, text in columns.items()
        }

    def digest_material(self) -> dict[str, Any]:
        """What changes the masked result (for the snapshot cache's key)."""
        return {"tables": self.tables, "strict": self.strict}


def resolve(
    requested: str | dict[str, Any] | None,
    backups: Sequence[Backup],
    backups_dir: Path,
) -> tuple[MaskingPolicy | None, list[str]]:
    """The policy for a create, and warnings for its report. Raises MaskingPolicyInvalid
    naming every problem (unknown tables, columns, strategies; an unreadable file)."""
    warnings: list[str] = []
    labelled, not_understood = _from_labels(backups)
    if requested == NONE:
        if labelled:
            warnings.append(
                f'masking is off ("masking": "none") although the dump declares '
                f"{sum(len(c) for c in labelled.values())} masked columns (PostgreSQL "
                "Anonymizer labels): this sandbox holds their original values"
            )
        return None, warnings
    sources = []
    document = PolicyDocument()
    if isinstance(requested, dict):
        document = _document(requested, "the request's masking")
        sources.append("request")
    elif isinstance(requested, str):
        document = _document(_read_file(requested, backups_dir), requested)
        sources.append(f"file {requested}")
    tables: dict[str, dict[str, str]] = {}
    for table, columns in labelled.items():  # the dump's rules; the request's win
        for column, strategy in columns.items():
            tables.setdefault(table, {})[column] = strategy
    if labelled:
        sources.append("anon labels")
    requested_columns = set()
    for table, columns in document.tables.items():
        tables.setdefault(_qualified(table), {}).update(columns)
        requested_columns |= {(_qualified(table), column) for column in columns}
    from_labels = [
        f"{table}.{column}"
        for table, columns in labelled.items()
        for column in columns
        if (table, column) not in requested_columns
    ]
    if not tables and requested is None:
        return None, warnings
    _check(tables, backups)
    if not_understood:
        warnings.append(
            "PostgreSQL Anonymizer labels not understood (those columns are not masked "
            "unless the policy covers them): " + "; ".join(not_understood[:20])
        )
    policy = MaskingPolicy(
        tables=tables,
        strict=document.strict,
        source=" + ".join(sources) or "request",
        from_labels=from_labels,
        labels_not_understood=not_understood,
    )
    return policy, warnings


def _from_labels(backups: Sequence[Backup]) -> tuple[dict[str, dict[str, str]], list[str]]:
    tables: dict[str, dict[str, str]] = {}
    not_understood = []
    for backup in backups:
        for label in backup.anon_labels:
            strategy = strategy_for(label.label)
            if strategy is None:
                not_understood.append(f"{label.table}.{label.column}: {label.label}")
            else:
                tables.setdefault(label.table, {})[label.column] = str(strategy)
    return tables, not_understood


def _document(raw: object, where: str) -> PolicyDocument:
    if not isinstance(raw, dict):
        raise MaskingPolicyInvalid(
            f'{where}: a masking policy is an object with "tables" (and "strict"), '
            f"not {type(raw).__name__}"
        )
    try:
        return PolicyDocument.model_validate(raw)
    except ValidationError as exc:
        problems = [
            f"{'.'.join(str(p) for p in e['loc']) or 'policy'}: {e['msg']}" for e in exc.errors()
        ]
        raise MaskingPolicyInvalid(
            f"{where} is not a masking policy: " + "; ".join(problems), problems=problems
        ) from None


def _read_file(name: str, backups_dir: Path) -> object:
    """A policy file in the backups folder (YAML or JSON), never outside it."""
    root = backups_dir.resolve()
    path = (root / name).resolve()
    if not path.is_relative_to(root) or not name.endswith(POLICY_SUFFIXES):
        raise MaskingPolicyInvalid(
            f'masking {name!r}: give "none", a policy object, or the name of a '
            f"{'/'.join(POLICY_SUFFIXES)} file in the backups folder"
        )
    try:
        if path.stat().st_size > MAX_POLICY_BYTES:
            raise MaskingPolicyInvalid(f"masking policy {name} is over 1 MB")
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise MaskingPolicyInvalid(
            f"no masking policy file {name!r} in the backups folder"
        ) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise MaskingPolicyInvalid(f"cannot read masking policy {name}: {exc}") from None
    try:
        return json.loads(text) if name.endswith(".json") else yaml.safe_load(text)
    except (ValueError, yaml.YAMLError) as exc:
        raise MaskingPolicyInvalid(f"masking policy {name} does not parse: {exc}") from None


def _qualified(table: str) -> str:
    return table if "." in table else f"public.{table}"


def _check(tables: dict[str, dict[str, str]], backups: Sequence[Backup]) -> None:
    """Every table and column the dump declares, every strategy known; all problems at
    once. A table whose columns the dump does not list (no definition, no data) is
    accepted as declared; its columns are checked in the sandbox."""
    known: dict[str, set[str]] = {}
    for backup in backups:
        declared = {
            f"{o.namespace}.{o.name}"
            for o in backup.objects
            if o.kind in ("TABLE", "MATERIALIZED VIEW", "VIEW")
        }
        for table in declared | set(backup.data_tables):
            known.setdefault(table, set())
        for table, names in backup.columns.items():
            known.setdefault(table, set()).update(names)
    problems = []
    for table, columns in tables.items():
        if table not in known:
            problems.append(f"table {table}: not in the backup")
            continue
        for column, text in columns.items():
            if known[table] and column not in known[table]:
                problems.append(f"column {table}.{column}: not in the backup's table")
            try:
                parse_strategy(text)
            except ValueError as exc:
                problems.append(f"column {table}.{column}: {exc}")
    if problems:
        raise MaskingPolicyInvalid(
            f"the masking policy does not fit the backup: {'; '.join(problems[:20])}",
            problems=problems,
        )


def resolve_for_plan(
    requested: str | dict[str, Any] | None, plan: RestorePlan, backups_dir: Path
) -> tuple[MaskingPolicy | None, list[str]]:
    """``resolve`` for a restore plan: masking covers the database a sandbox hands out,
    so a dump that makes several databases is refused when it would be masked."""
    policy, warnings = resolve(requested, plan.backups, backups_dir)
    if policy is not None and len(plan.databases) > 1:
        raise MaskingPolicyInvalid(
            f"masking covers one database, and this dump makes {len(plan.databases)} "
            f"({', '.join(plan.databases)}): restore the one database's pg_dump instead, "
            'or give "masking": "none"'
        )
    return policy, warnings
