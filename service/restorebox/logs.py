"""Logging: one JSON object per line for machines, readable coloured lines on a terminal,
with the sandbox id (and other fields) where there are some."""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime
from typing import Any

# Fields of a record that are not data; uvicorn's "color_message" repeats the message
# with terminal escape codes, which never belong in JSON.
_RESERVED = set(logging.makeLogRecord({}).__dict__) | {"message", "asctime", "color_message"}
_LEVEL_COLOURS = {"DEBUG": "2", "INFO": "32", "WARNING": "33", "ERROR": "31", "CRITICAL": "1;31"}


def _fields(record: logging.LogRecord) -> dict[str, Any]:
    return {
        key: value
        for key, value in record.__dict__.items()
        if key not in _RESERVED and not key.startswith("_")
    }


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        entry.update(_fields(record))
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)


class TextFormatter(logging.Formatter):
    """``13:04:05 INFO  restorebox.lifecycle.manager  sandbox ready  sandbox=ab12``, coloured."""

    def __init__(self, colour: bool) -> None:
        super().__init__()
        self.colour = colour

    def _paint(self, code: str, text: str) -> str:
        return f"\x1b[{code}m{text}\x1b[0m" if self.colour else text

    def format(self, record: logging.LogRecord) -> str:
        when = datetime.fromtimestamp(record.created).strftime("%H:%M:%S")
        level = self._paint(_LEVEL_COLOURS.get(record.levelname, "0"), f"{record.levelname:<7}")
        extras = "  ".join(f"{k}={v}" for k, v in _fields(record).items())
        line = f"{self._paint('2', when)} {level} {self._paint('36', record.name)}  "
        line += record.getMessage() + (f"  {self._paint('2', extras)}" if extras else "")
        if record.exc_info:
            line += "\n" + self.formatException(record.exc_info)
        return line


def configure(level: str = "INFO", log_format: str = "auto") -> None:
    """``log_format``: json, text, or auto (text when stderr is a terminal)."""
    handler = logging.StreamHandler(sys.stderr)
    tty = sys.stderr.isatty()
    if log_format == "text" or (log_format == "auto" and tty):
        handler.setFormatter(TextFormatter(colour=tty))
    else:
        handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    for noisy in ("urllib3", "docker"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
