"""PostgreSQL Anonymizer's rules, read as restorebox strategies.

A label is ``MASKED WITH FUNCTION anon.<fn>(...)`` or ``MASKED WITH VALUE <constant>``
(or ``NOT MASKED``). The common functions map onto a strategy; the rest are listed as
not understood, and their columns stay as the dump has them unless a policy covers
them (the suspicious-column scan still looks at them)."""

from __future__ import annotations

import re

from restorebox.masking.strategies import Strategy

_FUNCTION = re.compile(
    r"^\s*MASKED\s+WITH\s+FUNCTION\s+(?:anon\.)?(\w+)\s*\((.*)\)\s*$", re.I | re.S
)
_VALUE = re.compile(r"^\s*MASKED\s+WITH\s+VALUE\s+(.+?)\s*$", re.I | re.S)
_INTERVAL = re.compile(r"(\d+)\s*(day|week|month|year|hour|minute|second)s?", re.I)
_DAYS_PER = {"day": 1, "week": 7, "month": 30, "year": 365, "hour": 0, "minute": 0, "second": 0}

# Function names (anon 1.x and 2.x spell them fake_*, pseudo_*, dummy_*), by what
# they produce, most specific first.
_BY_NAME: list[tuple[re.Pattern[str], str]] = [
    (re.compile(r"email"), "email"),
    (re.compile(r"first_?name"), "first_name"),
    (re.compile(r"last_?name"), "last_name"),
    (re.compile(r"phone"), "phone"),
    (re.compile(r"city"), "city"),
    (re.compile(r"address|street"), "address"),
    (re.compile(r"lorem|paragraph|sentence|random_string"), "text"),
    (re.compile(r"^(?:fake|pseudo|dummy)_(?:name|full_?name)$"), "name"),
    (re.compile(r"^(?:hash|digest)$"), "hash"),
]


def strategy_for(label: str) -> Strategy | None:
    """The strategy a label asks for; None when it is not understood."""
    if re.fullmatch(r"\s*NOT\s+MASKED\s*", label, re.I):
        return Strategy("keep")
    match = _VALUE.match(label)
    if match:
        return _constant(match.group(1))
    match = _FUNCTION.match(label)
    if match is None:
        return None
    function, arguments = match.group(1).lower(), match.group(2)
    if function == "partial":  # partial(value, prefix, padding, suffix)
        suffix = arguments.rsplit(",", 1)[-1].strip()
        return Strategy("partial", suffix) if suffix.isdigit() and int(suffix) > 0 else None
    if function == "dnoise":  # dnoise(value, interval '2 days')
        days = sum(int(n) * _DAYS_PER[unit.lower()] for n, unit in _INTERVAL.findall(arguments))
        return Strategy("shift_date", str(max(days, 1))) if _INTERVAL.search(arguments) else None
    for pattern, kind in _BY_NAME:
        if pattern.search(function):
            return Strategy(kind)
    return None


def _constant(text: str) -> Strategy | None:
    text = text.strip()
    if text.upper() == "NULL":
        return Strategy("null")
    match = re.fullmatch(r"'((?:[^']|'')*)'(?:\s*::\s*[\w ]+)?", text, re.S)
    if match:
        return Strategy("fixed", match.group(1).replace("''", "'").strip())
    if re.fullmatch(r"-?\d+(?:\.\d+)?", text):
        return Strategy("fixed", text)
    return None
