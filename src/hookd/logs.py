"""hookd's log lines: readable text (the default) or JSON lines (`HOOKD_LOG_FORMAT=json`).

A JSON line holds `time` (RFC 3339, UTC), `level`, `logger` and `message`, then the fields the
line was logged with (`request_id`, `event_id`, `delivery_id`, `webhook_id`, `attempt`,
`outcome`…), then `exception` when there is one.

The lines about error answers (a 4xx or 5xx, or a refusal by the server) are kept within
`HOOKD_LOG_ERROR_LINES_PER_SECOND` for each status: a client that earns thousands of 431s or
429s a second must not fill the disk nor spend the event loop on writing them.
"""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import IO, Any

import orjson

from hookd.config import Settings

TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s %(message)s"
# What every LogRecord has: the rest was given with `extra=`.
_STANDARD = frozenset(logging.makeLogRecord({}).__dict__) | {"message", "asctime", "taskName"}


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key, value in record.__dict__.items():
            if key not in _STANDARD and key not in line:
                line[key] = value
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        elif record.stack_info:
            line["stack"] = self.formatStack(record.stack_info)
        return orjson.dumps(line, default=str).decode()


class LineBudget:
    """At most `per_second` lines of each kind a second (0: no limit). The lines beyond it are
    counted instead of written, and the count is told in the next line of that kind written."""

    def __init__(self, per_second: int, clock: Callable[[], float] = time.monotonic) -> None:
        self.per_second = per_second
        self._clock = clock
        # kind -> [start of its current second, lines written in it, lines left out since the
        # last one written]
        self._kinds: dict[object, list[float]] = {}

    def admit(self, kind: object) -> int | None:
        """None when a line of `kind` is to be left out; else how many lines of that kind were
        left out before it."""
        if not self.per_second:
            return 0
        now = self._clock()
        counts = self._kinds.get(kind)
        if counts is None:
            counts = self._kinds[kind] = [now, 0, 0]
        elif now - counts[0] >= 1.0:
            counts[0], counts[1] = now, 0
        if counts[1] >= self.per_second:
            counts[2] += 1
            return None
        counts[1] += 1
        left_out = int(counts[2])
        counts[2] = 0
        return left_out


class ErrorLineBudget(logging.Filter):
    """Keeps the lines logged with an error `status` (400 and up) within a `LineBudget` per
    status; the first line written after some were left out says how many (`left_out`)."""

    def __init__(self, per_second: int, clock: Callable[[], float] = time.monotonic) -> None:
        super().__init__()
        self.budget = LineBudget(per_second, clock)

    def filter(self, record: logging.LogRecord) -> bool:
        status = getattr(record, "status", None)
        if not isinstance(status, int) or status < 400:
            return True
        left_out = self.budget.admit(status)
        if left_out is None:
            return False
        if left_out:
            record.msg = f"{record.msg} ({left_out} lines like this left out before it)"
            record.left_out = left_out
        return True


# The loggers whose lines carry the `status` of an answer.
ANSWER_LOGGERS = ("hookd.http",)


def formatter(log_format: str) -> logging.Formatter:
    return JsonFormatter() if log_format == "json" else logging.Formatter(TEXT_FORMAT)


def configure(settings: Settings, stream: IO[str] | None = None) -> None:
    """Send hookd's (and its libraries') log lines to `stream` (stderr) as the settings say."""
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(formatter(settings.log_format))
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    logging.getLogger("hookd").setLevel(settings.log_level.upper())
    for name in ANSWER_LOGGERS:
        answers = logging.getLogger(name)
        for old_filter in list(answers.filters):
            if isinstance(old_filter, ErrorLineBudget):
                answers.removeFilter(old_filter)
        answers.addFilter(ErrorLineBudget(settings.log_error_lines_per_second))
    logging.getLogger("alembic").setLevel(logging.WARNING)
    # uvicorn's own loggers log through the root's handler, in the same format.
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        uvicorn = logging.getLogger(name)
        uvicorn.handlers.clear()
        uvicorn.propagate = True
