"""The frame layer: preface, type and length checks, incremental parsing, linear cost."""

from __future__ import annotations

import time

import pytest

from common.wire import PREFACE, ErrorCode, FrameType, ProtocolError, encode_frame
from common.wire.frames import FrameParser


def parser(max_payload: int = 100, **kwargs: object) -> FrameParser:
    return FrameParser(max_payload, too_large=ErrorCode.HEAD_TOO_LARGE, **kwargs)  # type: ignore[arg-type]


def frames_of(p: FrameParser) -> list[tuple[int, bytes]]:
    out = []
    while (frame := p.next_frame()) is not None:
        out.append(frame)
    return out


def test_preface_is_koko_and_version_one() -> None:
    assert PREFACE == bytes.fromhex("4b4f4b4f01")


def test_frame_types_match_the_spec() -> None:
    assert {t.name: t.value for t in FrameType} == {
        "HELLO": 1, "HELLO_ACK": 2, "PING": 3, "PONG": 4, "DRAIN": 5, "SERVICES": 6,
        "REQUEST": 0x10, "RESPONSE": 0x11,
    }  # fmt: skip


@pytest.mark.parametrize(
    ("frame_type", "payload", "hex_"),
    [
        (0x03, b"", "0300"),
        (0x10, b"ab", "10026162"),
        (0x21, b"x" * 64, "214040" + "78" * 64),
        (0x4000, b"", "8000400000"),
    ],
)
def test_encode_frame(frame_type: int, payload: bytes, hex_: str) -> None:
    assert encode_frame(frame_type, payload).hex() == hex_


def test_encode_frame_rejects_bad_type() -> None:
    with pytest.raises(ValueError):
        encode_frame(-1, b"")


def test_parses_frames_after_preface_in_one_feed() -> None:
    p = parser()
    p.feed(PREFACE + encode_frame(1, b"one") + encode_frame(7, b"") + encode_frame(2, b"tw"))
    assert frames_of(p) == [(1, b"one"), (7, b""), (2, b"tw")]
    assert not p.mid_frame


def test_parses_frames_fed_byte_by_byte() -> None:
    first = encode_frame(0x4000, b"a" * 70)
    data = PREFACE + first + encode_frame(1, b"b")
    boundaries = {0, len(PREFACE), len(PREFACE) + len(first), len(data)}
    p = parser()
    got = []
    for i in range(len(data)):
        p.feed(data[i : i + 1])
        got += frames_of(p)
        assert p.mid_frame == (i + 1 not in boundaries)
        p.compact()
    assert got == [(0x4000, b"a" * 70), (1, b"b")]


@pytest.mark.parametrize("bad", [b"X", b"KOKX", b"KOKO\x02", b"koko\x01", b"\x00"])
def test_bad_preface_fails_at_the_first_wrong_byte(bad: bytes) -> None:
    p = parser()
    p.feed(bad)
    with pytest.raises(ProtocolError) as info:
        p.next_frame()
    assert info.value.code == ErrorCode.PROTOCOL_ERROR


def test_partial_preface_waits() -> None:
    p = parser()
    p.feed(PREFACE[:4])
    assert p.next_frame() is None
    assert p.mid_frame


def test_expected_type_is_checked_before_the_length_arrives() -> None:
    p = parser(expect=0x10)
    p.feed(PREFACE + b"\x11")  # RESPONSE where a REQUEST is expected, no length yet
    with pytest.raises(ProtocolError) as info:
        p.next_frame()
    assert info.value.code == ErrorCode.PROTOCOL_ERROR


def test_forbidden_type_is_an_error() -> None:
    p = parser(forbid=frozenset({0x10}))
    p.feed(PREFACE + encode_frame(0x20, b"") + b"\x10")
    assert p.next_frame() == (0x20, b"")
    with pytest.raises(ProtocolError, match="unexpected frame type 0x10"):
        p.next_frame()


def test_declared_length_over_limit_fails_before_any_payload() -> None:
    p = parser(max_payload=100)
    p.feed(PREFACE + b"\x01" + bytes.fromhex("4065"))  # declares 101 bytes, sends none
    with pytest.raises(ProtocolError) as info:
        p.next_frame()
    assert info.value.code == ErrorCode.HEAD_TOO_LARGE


def test_declared_length_at_limit_is_accepted() -> None:
    p = parser(max_payload=100)
    p.feed(PREFACE + encode_frame(1, b"z" * 100))
    assert p.next_frame() == (1, b"z" * 100)


def test_huge_declared_length_is_rejected() -> None:
    p = parser(max_payload=100)
    p.feed(PREFACE + b"\x01" + b"\xff" * 8)
    with pytest.raises(ProtocolError, match="exceeds the limit"):
        p.next_frame()


def test_take_rest_returns_bytes_after_the_frame_and_empties_the_buffer() -> None:
    p = parser()
    p.feed(PREFACE + encode_frame(1, b"x") + b"body")
    assert p.next_frame() == (1, b"x")
    assert p.take_rest() == b"body"
    assert p.take_rest() == b""


def test_byte_by_byte_feeding_is_linear() -> None:
    # A 1 MiB frame, then 8 small ones, one byte per feed. A parser that re-scanned or
    # re-copied its buffer per feed would move ~5 * 10**11 bytes; a linear one takes a second.
    data = PREFACE + encode_frame(1, bytes(1 << 20)) + encode_frame(2, b"x") * 8
    p = FrameParser(1 << 20, too_large=ErrorCode.PROTOCOL_ERROR)
    count = 0
    started = time.perf_counter()
    view = memoryview(data)
    for i in range(len(data)):
        p.feed(view[i : i + 1])
        if p.next_frame() is not None:
            count += 1
            p.compact()
    assert count == 9
    assert time.perf_counter() - started < 20


def test_error_codes_match_the_spec() -> None:
    assert {c.name: c.value for c in ErrorCode} == {
        "NO_ERROR": 0x0, "PROTOCOL_ERROR": 0x1, "INTERNAL_ERROR": 0x2, "UNKNOWN_SERVICE": 0x3,
        "ORIGIN_REFUSED": 0x4, "ORIGIN_TIMEOUT": 0x5, "ORIGIN_ERROR": 0x6, "BUSY": 0x7,
        "DRAINING": 0x8, "CANCELLED": 0x9, "HEAD_TOO_LARGE": 0xA, "UNAUTHORIZED": 0x100,
        "STREAM_NOT_ALLOWED": 0x101, "HEARTBEAT_TIMEOUT": 0x102, "HELLO_TIMEOUT": 0x103,
        "REVOKED": 0x104, "SHUTDOWN": 0x105,
    }  # fmt: skip


def test_protocol_error_carries_its_code() -> None:
    error = ProtocolError(ErrorCode.HEAD_TOO_LARGE, "too big")
    assert error.code is ErrorCode.HEAD_TOO_LARGE
    assert str(error) == error.message == "too big"
    assert repr(error) == "ProtocolError(HEAD_TOO_LARGE, 'too big')"
