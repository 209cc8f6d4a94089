"""The server's log: one line per notable event, human-readable or JSON, with request ids.

Every line written while a call is handled carries that call's request id (set per call by
:class:`~hyperdial_server.service._metrics.CallInterceptor`): the request's ``request_id``
field when it has one (it is what links the retries of one request), else the ``x-request-id``
metadata header, else one the server makes up.

Text (the default) is for people::

    2026-11-01T12:00:00.123Z INFO hyperdial.service [req 4f1c2a9e] created study mlp (GRID)

JSON (``--log-format json``) is one object per line for log pipelines, with the fields
``time``, ``level``, ``logger``, ``message``, ``request_id`` and the event's own fields
(``method``, ``code``, ``duration_ms``, ...).
"""

from __future__ import annotations

import json
import logging
import sys
import time
from collections.abc import Callable
from contextvars import ContextVar
from typing import Any, TextIO

#: Request id of the call being handled (None outside calls).
request_id: ContextVar[str | Callable[[], str] | None] = ContextVar(
    "hyperdial_request_id", default=None
)
"""The current call's request id, or a function that makes it when a log line first needs it
(most calls log nothing, and finding the id reads the call's metadata)."""

#: Values of ``--log-format``.
FORMATS = ("text", "json")
# Libraries whose DEBUG lines would drown the server's own.
_NOISY = ("grpc", "asyncio")
#: Longest request id written to the log; longer ones are cut.
MAX_REQUEST_ID = 128

# Attributes every LogRecord has; anything else on a record is an event field (``extra=``).
_RECORD_ATTRS = frozenset(
    vars(logging.LogRecord("", 0, "", 0, "", None, None)).keys()
    | {"message", "asctime", "request_id", "taskName"}
)


def clean_request_id(value: str) -> str:
    """A request id made safe for a log line: printable, no spaces, at most 128 characters."""
    return "".join(c if c.isprintable() and not c.isspace() else "?" for c in value)[
        :MAX_REQUEST_ID
    ]


class RequestIdFilter(logging.Filter):
    """Puts the current call's request id on every record as ``record.request_id``."""

    def filter(self, record: logging.LogRecord) -> bool:
        if getattr(record, "request_id", None) is None:
            rid = request_id.get()
            if callable(rid):  # made once per call, then kept for its other lines
                rid = rid()
                request_id.set(rid)
            record.request_id = rid
        return True


def _timestamp(record: logging.LogRecord) -> str:
    seconds = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
    return f"{seconds}.{int(record.msecs):03d}Z"


class TextFormatter(logging.Formatter):
    """``TIME LEVEL LOGGER [req ID] MESSAGE``, the traceback below it when there is one."""

    def format(self, record: logging.LogRecord) -> str:
        rid = getattr(record, "request_id", None)
        req = f" [req {rid}]" if rid else ""
        line = f"{_timestamp(record)} {record.levelname} {record.name}{req} {record.getMessage()}"
        if record.exc_info:
            line += "\n" + self.formatException(record.exc_info)
        return line


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, request_id, event fields."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": _timestamp(record),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        rid = getattr(record, "request_id", None)
        if rid:
            entry["request_id"] = rid
        for key, value in vars(record).items():
            if key not in _RECORD_ATTRS and not key.startswith("_"):
                entry[key] = value
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str, ensure_ascii=False)


def configure(level: str = "INFO", fmt: str = "text", stream: TextIO | None = None) -> None:
    """Sends every logger's records to ``stream`` (stderr) in the chosen format.

    Args:
        level: Lowest level written: DEBUG (every call), INFO, WARNING or ERROR.
        fmt: ``"text"`` or ``"json"``.
        stream: Where lines go; stderr by default.

    Raises:
        ValueError: An unknown format.
    """
    if fmt not in FORMATS:
        raise ValueError(f"unknown log format {fmt!r}; use one of {', '.join(FORMATS)}")
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter())
    handler.addFilter(RequestIdFilter())
    logging.basicConfig(level=level, handlers=[handler], force=True)
    # DEBUG is for hyperdial's own lines (one per call), not for gRPC's and asyncio's internals.
    number = logging.getLevelName(level)
    floor = max(logging.INFO, number if isinstance(number, int) else 0)
    for name in _NOISY:
        logging.getLogger(name).setLevel(floor)
