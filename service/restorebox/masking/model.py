"""What a masked sandbox reports: ``report.masking``."""

from __future__ import annotations

from pydantic import BaseModel, Field


class MaskedColumn(BaseModel):
    table: str  # schema.table
    column: str
    strategy: str
    rows: int = 0  # values changed (the column's non-null values)
    via: str = "policy"  # "policy", "anon label", or "foreign key to s.t.c" (kept joinable)


class SuspiciousColumn(BaseModel):
    table: str
    column: str
    type: str
    reasons: list[str]


class Leak(BaseModel):
    table: str
    column: str
    values: int  # original values of masked columns found here (never the values)
    where: str = "column"  # "column", or "file" for the data directory's files


class MaskingReport(BaseModel):
    source: str
    strict: bool = False
    columns: list[MaskedColumn] = Field(default_factory=list)
    seconds: float = 0.0
    rows_per_second: float = 0.0
    # Seconds per phase: resolve (policy against the catalog, scan, sample), aside (masked
    # rows of reloaded tables written aside), update (updates, and the reload's swap),
    # rewrite (tables, views, statistics), scrub (the WAL that held the originals).
    phases: dict[str, float] = Field(default_factory=dict)
    suspicious: list[SuspiciousColumn] = Field(default_factory=list)
    leaks: list[Leak] = Field(default_factory=list)
    labels_not_understood: list[str] = Field(default_factory=list)
    warnings: list[str] = Field(default_factory=list)
