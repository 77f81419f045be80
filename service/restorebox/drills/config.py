"""The drills file, ``restorebox-drills.yaml`` in the backups folder: series declared
explicitly (a glob, the order of a set, the expected interval), their thresholds,
tables that must hold at least N rows, SQL checks with an expected value, and findings
to ignore, each with a written reason. Optional: without it, series come from names."""

from __future__ import annotations

import fnmatch
import re
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from restorebox.drills.compare import Check, Rules

FILE_NAME = "restorebox-drills.yaml"  # never a backup (backups/catalog.NOT_BACKUPS)
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhd]?)\s*$")
_UNITS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}


def seconds(value: object) -> float:
    """'24h', '90m', '2d', '3600s', 3600 -> seconds."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    match = _DURATION.match(str(value))
    if match is None:
        raise ValueError(f"{value!r} is not a duration: write it like 30m, 24h or 7d")
    return float(match.group(1)) * _UNITS[match.group(2)]


def share(value: object) -> float:
    """'10%', 0.1 -> 0.1."""
    text = str(value).strip()
    number = float(text[:-1]) / 100 if text.endswith("%") else float(text)
    if not 0 <= number <= 1:
        raise ValueError(f"{value!r} is not a share between 0% and 100%")
    return number


class CheckEntry(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str
    sql: str
    expect: str | int | float | bool

    def check(self) -> Check:
        expect = self.expect
        text = str(expect).lower() if isinstance(expect, bool) else str(expect)
        return Check(
            self.name, self.sql, "t" if text == "true" else "f" if text == "false" else text
        )


class IgnoreEntry(BaseModel):
    model_config = ConfigDict(extra="forbid")
    code: str
    object: str | None = None  # only findings about this object
    reason: str = Field(min_length=3)


class SeriesEntry(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str
    match: str  # a glob relative to the backups folder
    set: list[str] = Field(default_factory=list)  # globs, in restore order (same stamp)
    every: float | None = None
    rows_dropped: float | None = None
    shrank: float | None = None
    rto: float | None = None  # a restore slower than this is RTO_EXCEEDED
    content: str | None = None  # what each backup must hold: complete, data, schema
    min_rows: dict[str, int] = Field(default_factory=dict)
    checks: list[CheckEntry] = Field(default_factory=list)
    ignore: list[IgnoreEntry] = Field(default_factory=list)

    @field_validator("every", "rto", mode="before")
    @classmethod
    def _duration(cls, value: object) -> object:
        return None if value is None else seconds(value)

    @field_validator("rows_dropped", "shrank", mode="before")
    @classmethod
    def _share(cls, value: object) -> object:
        return None if value is None else share(value)

    def matches(self, backup: str) -> bool:
        return fnmatch.fnmatchcase(backup, self.match) or any(
            fnmatch.fnmatchcase(backup, pattern) for pattern in self.set
        )

    def rules(self) -> Rules:
        defaults = Rules()
        return Rules(
            rows_dropped=defaults.rows_dropped if self.rows_dropped is None else self.rows_dropped,
            shrank=defaults.shrank if self.shrank is None else self.shrank,
            rto_limit_seconds=self.rto,
            min_rows=dict(self.min_rows),
            checks=tuple(c.check() for c in self.checks),
            expect_content=self.content,
        )


class DrillsFile(BaseModel):
    model_config = ConfigDict(extra="forbid")
    series: list[SeriesEntry] = Field(default_factory=list)

    def entry(self, series: str) -> SeriesEntry | None:
        return next((e for e in self.series if e.name == series), None)

    def owner_of(self, backup: str) -> SeriesEntry | None:
        return next((e for e in self.series if e.matches(backup)), None)


def load(backups_dir: Path) -> tuple[DrillsFile, str | None]:
    """The drills file, or an empty one and what is wrong with it (said on /v1/series
    and in the log, never a crash: drills go on by name meanwhile)."""
    path = backups_dir / FILE_NAME
    try:
        text = path.read_text()
    except FileNotFoundError:
        return DrillsFile(), None
    except OSError as exc:
        return DrillsFile(), f"{FILE_NAME}: cannot be read: {exc}"
    try:
        data: Any = yaml.safe_load(text) or {}
        return DrillsFile.model_validate(data), None
    except yaml.YAMLError as exc:
        return DrillsFile(), f"{FILE_NAME} is not valid YAML: {exc}"
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors()
        )
        return DrillsFile(), f"{FILE_NAME}: {problems}"
