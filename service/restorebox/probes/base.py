"""What a probe is: a name, a description, and a check against the restored sandbox."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

import psycopg
from psycopg import sql

from restorebox.backups.model import Backup, DeclaredObject
from restorebox.masking.evidence import Samples
from restorebox.models import RestoreReport, Sandbox
from restorebox.platforms import Classifier

Status = Literal["pass", "warn", "fail"]


@dataclass
class Outcome:
    status: Status
    detail: str
    data: dict[str, Any] = field(default_factory=dict)


@dataclass
class Context:
    """Everything a probe may look at. ``conn`` is an autocommit superuser connection."""

    conn: psycopg.Connection[Any]
    sandbox: Sandbox
    backups: tuple[Backup, ...]
    report: RestoreReport | None
    deadline: float
    platform: Classifier = field(default_factory=lambda: Classifier(None))
    masking: Samples | None = None  # a masked sandbox's original values (masking_leaks)

    def is_platform(self, obj: DeclaredObject) -> bool:
        """A platform's piece: in a platform schema, a platform extension, or a user
        object that could not be made because of a platform piece (named in such an
        error's statement or archive entry)."""
        profile = self.platform.profile
        if profile is not None and (
            obj.namespace in profile.schemas
            or (obj.kind == "EXTENSION" and obj.name in profile.extensions)
        ):
            return True
        report = self.report
        return report is not None and any(
            e.platform and obj.name in f"{e.statement or ''} {e.toc_entry or ''}"
            for e in report.errors
        )

    @property
    def declared(self) -> list[DeclaredObject]:
        return [o for b in self.backups for o in b.objects]

    def remaining(self) -> float:
        return self.deadline - time.monotonic()

    def rows(self, query: str | sql.Composable, params: Any = None) -> list[tuple[Any, ...]]:
        return list(self.conn.execute(query, params).fetchall())  # type: ignore[arg-type]


@dataclass(frozen=True)
class Probe:
    name: str
    description: str
    check: Callable[[Context], Outcome]
    default: bool = True


def qualified(schema: str, name: str) -> sql.Composed:
    return sql.SQL("{}.{}").format(sql.Identifier(schema), sql.Identifier(name))


def first(items: list[Any], n: int = 20) -> list[Any]:
    return items[:n]
