"""common.logs: JSON lines with extra fields, redaction, exceptions, text format, levels."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Literal

import pytest

from common import logs


@pytest.fixture(autouse=True)
def restore_root_logger() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


def configured(fmt: Literal["json", "text"] = "json", level: str = "info") -> io.StringIO:
    stream = io.StringIO()
    logs.configure(level, fmt, stream)
    return stream


def lines(stream: io.StringIO) -> list[dict[str, object]]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


def test_request_line_is_one_json_object() -> None:
    stream = configured()
    before = datetime.now(UTC)
    logging.getLogger("ingress.public").info(
        "request", extra={"request_id": "r-1", "service": "web", "status": 200, "bytes": 12}
    )
    [entry] = lines(stream)
    ts = entry.pop("ts")
    assert isinstance(ts, str) and ts.endswith("Z")
    moment = datetime.fromisoformat(ts)
    assert before - timedelta(seconds=1) <= moment <= datetime.now(UTC)
    assert entry == {
        "level": "info",
        "logger": "ingress.public",
        "msg": "request",
        "request_id": "r-1",
        "service": "web",
        "status": 200,
        "bytes": 12,
    }


def test_message_arguments_and_newlines_stay_on_one_line() -> None:
    stream = configured()
    logging.getLogger("x").warning("bad %s\nnext line", "thing")
    assert stream.getvalue().count("\n") == 1
    [entry] = lines(stream)
    assert entry["msg"] == "bad thing\nnext line"
    assert entry["level"] == "warning"


@pytest.mark.parametrize(
    "key",
    [
        "authorization",
        "Authorization",
        "cookie",
        "set-cookie",
        "set_cookie",
        "token",
        "password",
        "proxy_authorization",
        "enrollment_token",
        "client_secret",
    ],
)
def test_sensitive_fields_are_redacted(key: str) -> None:
    stream = configured()
    logging.getLogger("x").info("m", extra={key: "s3cret", "keep": "visible"})
    [entry] = lines(stream)
    assert entry[key] == logs.REDACTED
    assert entry["keep"] == "visible"
    assert "s3cret" not in stream.getvalue()


def test_nested_and_header_pair_secrets_are_redacted() -> None:
    stream = configured()
    headers = [(b"authorization", b"Bearer s3cret"), ("Cookie", "sid=s3cret"), ("accept", "*/*")]
    logging.getLogger("x").info(
        "m",
        extra={"headers": headers, "request": {"query": "a=1", "auth": {"password": "s3cret"}}},
    )
    [entry] = lines(stream)
    assert "s3cret" not in stream.getvalue()
    assert entry["headers"] == [
        ["authorization", logs.REDACTED],
        ["Cookie", logs.REDACTED],
        ["accept", "*/*"],
    ]
    assert entry["request"] == {"query": "a=1", "auth": {"password": logs.REDACTED}}


def test_unusual_values_are_still_json() -> None:
    stream = configured()
    logging.getLogger("x").info(
        "m", extra={"raw": b"\xffab", "when": datetime(2025, 1, 2, tzinfo=UTC)}
    )
    [entry] = lines(stream)
    assert entry["raw"] == "\\xffab"
    assert entry["when"] == "2025-01-02 00:00:00+00:00"


def test_exception_text_is_included() -> None:
    stream = configured()
    try:
        raise RuntimeError("boom")
    except RuntimeError:
        logging.getLogger("x").exception("failed", extra={"request_id": "r-2"})
    [entry] = lines(stream)
    assert entry["level"] == "error"
    assert entry["request_id"] == "r-2"
    exc = entry["exc"]
    assert isinstance(exc, str)
    assert exc.startswith("Traceback (most recent call last):")
    assert exc.endswith("RuntimeError: boom")


def test_extra_cannot_hide_standard_fields() -> None:
    stream = configured()
    logging.getLogger("real").info("m", extra={"level": "fake", "logger": "fake", "ts": "fake"})
    [entry] = lines(stream)
    assert (entry["level"], entry["logger"]) == ("info", "real")
    assert entry["ts"] != "fake"


def test_level_filters() -> None:
    stream = configured(level="WARNING")
    logging.getLogger("x").info("hidden")
    logging.getLogger("x").error("shown")
    assert [e["msg"] for e in lines(stream)] == ["shown"]
    stream = configured(level="debug")
    logging.getLogger("x").debug("now shown")
    assert [e["msg"] for e in lines(stream)] == ["now shown"]


def test_configure_again_replaces_the_handler() -> None:
    foreign = logging.getLogger().handlers[:]
    first = configured()
    second = configured()
    logging.getLogger("x").info("once")
    assert first.getvalue() == ""
    assert len(lines(second)) == 1
    assert len(logging.getLogger().handlers) == len(foreign) + 1
    assert all(h in logging.getLogger().handlers for h in foreign)


def test_configure_keeps_others_handlers(caplog: pytest.LogCaptureFixture) -> None:
    stream = configured()
    logging.getLogger("x").info("both see it", extra={"password": "s3cret"})
    assert [r.getMessage() for r in caplog.records] == ["both see it"]
    assert len(lines(stream)) == 1


def test_bad_level_and_format() -> None:
    with pytest.raises(ValueError, match="log level must be one of debug, info"):
        logs.configure("verbose")
    with pytest.raises(ValueError, match="log format must be json or text"):
        logs.configure("info", "xml")  # type: ignore[arg-type]


def test_text_format() -> None:
    stream = configured("text")
    try:
        raise ValueError("bad")
    except ValueError:
        logging.getLogger("edge.tunnel").warning(
            "lost %s", "ingress-1", exc_info=True, extra={"token": "s3cret", "attempt": 3}
        )
    text = stream.getvalue()
    first, *rest = text.splitlines()
    assert first.endswith(' warning  edge.tunnel: lost ingress-1 token="[redacted]" attempt=3')
    datetime.fromisoformat(first.split(" ", 1)[0])
    assert rest[0] == "Traceback (most recent call last):"
    assert rest[-1] == "ValueError: bad"
    assert "s3cret" not in text


TIMESTAMPS = [
    (0.0, "1970-01-01T00:00:00.000Z"),
    (0.9999, "1970-01-01T00:00:00.999Z"),
    (1.0, "1970-01-01T00:00:01.000Z"),
    (1_735_732_800.25, "2025-01-01T12:00:00.250Z"),
    (1_735_732_800.75, "2025-01-01T12:00:00.750Z"),
    (1_735_732_801.5, "2025-01-01T12:00:01.500Z"),
    (0.5, "1970-01-01T00:00:00.500Z"),
]


def test_timestamps_across_seconds() -> None:
    """One formatter, so the per-second cache is exercised going forwards and backwards."""
    json_formatter, text_formatter = logs.JsonFormatter(), logs.TextFormatter()
    for created, ts in TIMESTAMPS:
        record = logging.makeLogRecord({"msg": "m", "created": created})
        assert json.loads(json_formatter.format(record))["ts"] == ts
        assert text_formatter.format(record).startswith(ts + " ")
