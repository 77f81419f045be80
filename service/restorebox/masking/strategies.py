"""Masking strategies: what a policy may say of a column, parsed and checked.

A strategy is a name, and for some an argument after a colon: ``email``, ``fixed:N/A``,
``shift_date:30``, ``partial:4``. What each does in SQL is in ``functions``."""

from __future__ import annotations

from dataclasses import dataclass

# name -> what it does (for error messages and the README's table)
STRATEGIES: dict[str, str] = {
    "email": "a fake, unique address at example.com/.net/.org",
    "name": "a fake full name",
    "first_name": "a fake first name",
    "last_name": "a fake last name",
    "phone": "random digits, as many as the original has (and its leading +)",
    "address": "a fake street address",
    "city": "a fake city",
    "text": "lorem words of the same length class, none of the original's",
    "hash": "a keyed hash (hex text, or a number for integer columns, a uuid for uuids)",
    "null": "NULL",
    "fixed": "fixed:VALUE, this value",
    "shift_date": "shift_date:DAYS, a deterministic shift within +-DAYS (one per row)",
    "partial": "partial:N, only the last N characters kept, the rest as *",
    "keep": "unchanged: the column was looked at and is not personal",
}
WITH_ARGUMENT = {"fixed", "shift_date", "partial"}
MAX_SHIFT_DAYS = 36_500
MAX_PARTIAL = 100
# Strategies whose outputs may repeat for different inputs: in a column a unique index
# covers, a keyed suffix keeps the values apart.
NOT_INJECTIVE = {"name", "first_name", "last_name", "address", "city", "text", "phone"}


@dataclass(frozen=True)
class Strategy:
    kind: str
    argument: str | None = None

    def __str__(self) -> str:
        return self.kind if self.argument is None else f"{self.kind}:{self.argument}"

    @property
    def days(self) -> int:
        return int(self.argument or 0)

    @property
    def keep_last(self) -> int:
        return int(self.argument or 0)


def parse_strategy(text: str) -> Strategy:
    """``"partial:4"`` -> Strategy("partial", "4"); ValueError saying what is wrong."""
    if not isinstance(text, str):
        raise ValueError(f"a strategy is text, not {type(text).__name__}")
    kind, colon, argument = text.partition(":")
    kind = kind.strip()
    if kind not in STRATEGIES:
        raise ValueError(f"unknown strategy {text!r}; known: {', '.join(STRATEGIES)}")
    if kind not in WITH_ARGUMENT:
        if colon:
            raise ValueError(f"strategy {kind!r} takes no argument (got {text!r})")
        return Strategy(kind)
    if not colon:
        raise ValueError(f"strategy {kind!r} needs an argument, as in {STRATEGIES[kind]!r}")
    if kind == "fixed":
        return Strategy(kind, argument)
    limit = MAX_SHIFT_DAYS if kind == "shift_date" else MAX_PARTIAL
    if not argument.strip().isdigit() or not 0 < int(argument) <= limit:
        raise ValueError(f"{kind} takes a whole number from 1 to {limit} (got {argument!r})")
    return Strategy(kind, str(int(argument)))
