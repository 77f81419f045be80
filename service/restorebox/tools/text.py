"""Plain-text output shared by the CLI's commands."""

from __future__ import annotations


def table(rows: list[list[str]], headers: list[str]) -> str:
    """Columns padded to their widest cell, two spaces apart."""
    widths = [max(len(str(x)) for x in col) for col in zip(headers, *rows, strict=False)]
    lines = ["  ".join(str(h).ljust(w) for h, w in zip(headers, widths, strict=False))]
    lines += ["  ".join(str(c).ljust(w) for c, w in zip(r, widths, strict=False)) for r in rows]
    return "\n".join(lines)
