"""Structured logging on the standard library: one JSON object per line, secrets redacted.

Each process's composition root calls `configure` once; modules log with
``logging.getLogger(__name__)`` and put structured fields in ``extra``::

    log.info("request", extra={"request_id": rid, "service": "web", "status": 200})

gives ``{"ts": "2025-01-01T12:00:00.000Z", "level": "info", "logger": "ingress.public",
"msg": "request", "request_id": "…", "service": "web", "status": 200}``.

Fields whose key names a secret (authorization, cookie, set-cookie, token, password, secret,
or ends in -token/-password/-secret, with `_` read as `-`, in any case) are replaced by
"[redacted]", also inside nested mappings and in (name, value) header pairs. The message text
itself is not inspected: never format secrets into it.
"""

from __future__ import annotations

import functools
import json
import logging
import sys
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import IO, Any, Literal

REDACTED = "[redacted]"
SENSITIVE_KEYS = frozenset(
    {"authorization", "proxy-authorization", "cookie", "set-cookie", "token", "password", "secret"}
)
SENSITIVE_SUFFIXES = ("-token", "-password", "-secret")
LEVELS = {"debug": logging.DEBUG, "info": logging.INFO, "warning": logging.WARNING}
LEVELS |= {"error": logging.ERROR, "critical": logging.CRITICAL}
_SCALARS = frozenset({str, int, float, bool, type(None)})
# Attributes every LogRecord has; anything else on a record came from `extra`.
_RECORD_KEYS = frozenset(logging.makeLogRecord({}).__dict__) | {"message", "asctime"}


def configure(
    level: str = "info",
    fmt: Literal["json", "text"] = "json",
    stream: IO[str] | None = None,
) -> None:
    """Send every log record of `level` and above to `stream` (default: stderr) in `fmt`.

    Replaces the handler an earlier call installed on the root logger, so calling it again
    reconfigures instead of duplicating output; handlers installed by others (pytest's log
    capture, for one) stay. Records no longer carry caller, thread or process details,
    which no format of ours shows (see `_lighter_records`).

    Raises:
        ValueError: unknown level or format.
    """
    numeric = LEVELS.get(level.lower())
    if numeric is None:
        raise ValueError(f"log level must be one of {', '.join(LEVELS)}, not {level!r}")
    if fmt not in ("json", "text"):
        raise ValueError(f"log format must be json or text, not {fmt!r}")
    handler = _Handler(sys.stderr if stream is None else stream)
    handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter())
    _lighter_records()
    root = logging.getLogger()
    for old in root.handlers[:]:
        if isinstance(old, _Handler):
            root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(numeric)
    # httpx logs every request at info (the control plane's readiness checks, every 10 s).
    for chatty in ("httpx", "httpcore"):
        logging.getLogger(chatty).setLevel(max(numeric, logging.WARNING))


class _Handler(logging.StreamHandler):  # type: ignore[type-arg]
    """The handler `configure` installs, so that a second call can find and replace it."""


def _lighter_records() -> None:
    """Stop the logging module from collecting what our formats never show.

    Every record would otherwise walk the stack for its caller (file, line, function) and
    look up the thread and process names: 14% of the instructions of an access log line
    (docs/performance.md). `_srcfile = None` is the switch the logging module's source
    documents for this. Other handlers then see "(unknown file)" and line 0.
    """
    logging._srcfile = None
    logging.logThreads = False
    logging.logMultiprocessing = False
    logging.logProcesses = False


@functools.lru_cache(maxsize=1024)  # a pure function of a few dozen field and header names
def is_sensitive(key: str) -> bool:
    """Whether a field or header named `key` holds a secret."""
    name = key.lower().replace("_", "-")
    return name in SENSITIVE_KEYS or name.endswith(SENSITIVE_SUFFIXES)


def redact(key: str, value: object) -> object:
    """`value` with secrets replaced: the whole value if `key` is sensitive, else nested ones."""
    if is_sensitive(key):
        return REDACTED
    return _redact_nested(value)


def _redact_nested(value: object) -> object:
    if type(value) in _SCALARS:  # the common case, first
        return value
    if isinstance(value, Mapping):
        return {str(k): redact(str(k), v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_redact_pair(item) for item in value]
    return value


def _redact_pair(item: object) -> object:
    if isinstance(item, tuple) and len(item) == 2 and isinstance(item[0], str | bytes):
        name = item[0].decode("latin-1") if isinstance(item[0], bytes) else item[0]
        return [name, redact(name, item[1])]
    return _redact_nested(item)


def extra_fields(record: logging.LogRecord) -> dict[str, object]:
    """The fields given through `extra`, redacted, in the order they were given."""
    return _add_extra({}, record)


def _add_extra(entry: dict[str, Any], record: logging.LogRecord) -> dict[str, Any]:
    """Add `record`'s extra fields, redacted, to `entry` without replacing any of its keys.

    The hot path of every access log line: one pass over the record, scalars (the usual
    values) kept without a call.
    """
    for key, value in record.__dict__.items():
        if key in _RECORD_KEYS or key in entry or key[:1] == "_":
            continue
        if is_sensitive(key):
            entry[key] = REDACTED
        else:
            entry[key] = value if type(value) in _SCALARS else _redact_nested(value)
    return entry


class _Clock:
    """ISO-8601 UTC timestamps with milliseconds, formatting the date and time once a second."""

    __slots__ = ("_prefix", "_second")

    def __init__(self) -> None:
        self._second = -1
        self._prefix = ""

    def timestamp(self, created: float) -> str:
        second = int(created)
        if second != self._second:
            moment = datetime.fromtimestamp(second, UTC)
            self._second, self._prefix = second, moment.strftime("%Y-%m-%dT%H:%M:%S")
        return f"{self._prefix}.{int((created - second) * 1000):03d}Z"


def _json_default(value: object) -> str:
    if isinstance(value, bytes | bytearray | memoryview):
        return bytes(value).decode("utf-8", "backslashreplace")
    return str(value)


class JsonFormatter(logging.Formatter):
    """One JSON object per record: ts, level, logger, msg, extra fields, exc, stack."""

    def __init__(self) -> None:
        super().__init__()
        self._clock = _Clock()
        # One encoder for every record: json.dumps() with options builds a new one per call.
        self._encode = json.JSONEncoder(default=_json_default, ensure_ascii=False).encode

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": self._clock.timestamp(record.created),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        _add_extra(entry, record)  # an extra field never hides a standard one
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        if record.stack_info:
            entry["stack"] = self.formatStack(record.stack_info)
        return self._encode(entry)


class TextFormatter(logging.Formatter):
    """One line per record for a terminal: ts level logger: msg key=value …, then traceback."""

    def __init__(self) -> None:
        super().__init__()
        self._clock = _Clock()

    def format(self, record: logging.LogRecord) -> str:
        fields = " ".join(
            f"{key}={json.dumps(value, default=_json_default, ensure_ascii=False)}"
            for key, value in extra_fields(record).items()
        )
        line = (
            f"{self._clock.timestamp(record.created)} {record.levelname.lower():<8} {record.name}: "
        )
        line += record.getMessage() + (f" {fields}" if fields else "")
        if record.exc_info:
            line += "\n" + self.formatException(record.exc_info)
        if record.stack_info:
            line += "\n" + self.formatStack(record.stack_info)
        return line
