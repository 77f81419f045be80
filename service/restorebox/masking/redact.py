"""A masked sandbox's restore report, without the values its errors quoted.

A failed statement's DETAIL names the key that clashed ("Key (email)=(ann@...)") and
its text may hold a whole row: the holder of a masked copy reads neither."""

from __future__ import annotations

import re

from restorebox.models import RestoreReport

_VALUES = re.compile(r"\)=\((.*?)\)( already exists| is not present| is duplicated|\.|$)")


def redacted(report: RestoreReport) -> RestoreReport:
    copy = report.model_copy(deep=True)
    for error in copy.errors:
        error.message = _VALUES.sub(r")=(…)\2", error.message)
        error.detail = _VALUES.sub(r")=(…)\2", error.detail) if error.detail else None
        error.statement = None
    for group in copy.error_groups:
        group.first_message = _VALUES.sub(r")=(…)\2", group.first_message)
    return copy
