"""A rule: a statement rewrite, and what the restore report says of it."""

from __future__ import annotations

from dataclasses import dataclass

from restorebox.sql.lexer import Statement
from restorebox.sql.rewrite import Rewrite


@dataclass(frozen=True)
class Rule:
    since: int  # the major that introduced what the rule removes (0: no server accepts it)
    rewrite: Rewrite
    note: str


class Applied:
    """Rules as rewrites that count the statements each one changed: the restore report
    names only the rules that changed something, and how much."""

    def __init__(self, rules: list[Rule]) -> None:
        self.rules = rules
        self.changed = [0] * len(rules)

    def rewrites(self) -> list[Rewrite]:
        return [self._counting(index, rule.rewrite) for index, rule in enumerate(self.rules)]

    def _counting(self, index: int, rewrite: Rewrite) -> Rewrite:
        def counted(statement: Statement) -> str | None:
            text = rewrite(statement)
            if text is not None:
                self.changed[index] += 1
            return text

        return counted

    def notes(self) -> list[str]:
        return [
            f"{rule.note} ({count} statement{'s' if count > 1 else ''})"
            for rule, count in zip(self.rules, self.changed, strict=True)
            if count
        ]
