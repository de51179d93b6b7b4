"""Control-stream messages: JSON round trips, strict decoding, unknown frames, limits (§4)."""

from __future__ import annotations

import json
import re

import pytest

from common.wire import (
    PREFACE,
    ControlMessage,
    ControlReader,
    Drain,
    ErrorCode,
    FrameType,
    Hello,
    HelloAck,
    Ping,
    Pong,
    ProtocolError,
    Services,
    decode_control,
    decode_varint,
    encode_control,
    encode_frame,
    encode_varint,
)

HELLO = {"agent_id": "a", "version": "v", "services": []}
HELLO_JSON = b'{"agent_id":"a","version":"v","services":[],'
ACK = {"node": "n", "accepted": []}
ACK_JSON = b'{"node":"n","accepted":[],'

MESSAGES: list[ControlMessage] = [
    Hello("web-1", "2.0.0", ("web", "api")),
    Hello("a", "v", (), max_streams=0, protocol=7, labels=(("zone", "eu"), ("rack", "3"))),
    Hello("ä-ü", "", ("ß", "日本"), max_streams=2**53 - 1),
    HelloAck("ingress-1", ("web",), (("api", "not allowed for this agent"),), 0.5),
    HelloAck("n", (), heartbeat_interval=3600),
    HelloAck("n", ("x",), heartbeat_interval=1e-9),
    Ping(0),
    Ping(2**53 - 1),
    Pong(42),
    Drain(),
    Drain("shutting down"),
    Services(("web", "web")),
    Services(()),
]


def frame(frame_type: int, obj: object, *, preface: bool = True) -> bytes:
    payload = obj if isinstance(obj, bytes) else json.dumps(obj).encode()
    return (PREFACE if preface else b"") + encode_frame(frame_type, payload)


def feed_error(data: bytes, reader: ControlReader | None = None) -> ProtocolError:
    with pytest.raises(ProtocolError) as info:
        (reader or ControlReader()).feed(data)
    return info.value


@pytest.mark.parametrize("message", MESSAGES)
def test_round_trip(message: ControlMessage) -> None:
    reader = ControlReader()
    assert reader.feed(encode_control(message, preface=True)) == [message]
    assert reader.feed(encode_control(message)) == [message]


def test_many_messages_byte_by_byte() -> None:
    data = PREFACE + b"".join(encode_control(m) for m in MESSAGES)
    reader = ControlReader()
    got: list[ControlMessage] = []
    for i in range(len(data)):
        got += reader.feed(data[i : i + 1])
    assert got == MESSAGES
    reader.feed_eof()


@pytest.mark.parametrize(
    ("message", "frame_type", "obj"),
    [
        (Ping(3), 0x03, {"seq": 3}),
        (Pong(3), 0x04, {"seq": 3}),
        (Drain("x"), 0x05, {"reason": "x"}),
        (Services(("a",)), 0x06, {"services": ["a"]}),
        (
            Hello("web-1", "2.0.0", ("web", "api")),
            0x01,
            {
                "agent_id": "web-1",
                "version": "2.0.0",
                "protocol": 1,
                "services": ["web", "api"],
                "max_streams": 512,
                "labels": {},
            },
        ),
        (
            HelloAck("ingress-1", ("web",), (("api", "no"),)),
            0x02,
            {
                "node": "ingress-1",
                "accepted": ["web"],
                "rejected": {"api": "no"},
                "heartbeat_interval": 2.0,
            },
        ),
    ],
)
def test_wire_format(message: ControlMessage, frame_type: int, obj: dict[str, object]) -> None:
    data = encode_control(message)
    assert data[0] == frame_type
    length = decode_varint(data, 1)
    assert length is not None
    assert json.loads(data[length[1] :]) == obj
    assert len(data) == length[1] + length[0]
    assert decode_control(frame_type, json.dumps(obj).encode()) == message


@pytest.mark.parametrize(
    ("frame_type", "obj", "expected"),
    [
        (0x01, {"agent_id": "a", "version": "v", "services": []}, Hello("a", "v", ())),
        (0x02, {"node": "n", "accepted": []}, HelloAck("n", ())),
        (0x02, {**ACK, "heartbeat_interval": 5}, HelloAck("n", (), (), 5.0)),
        (0x05, {}, Drain("")),
        (0x03, {"seq": 1, "sent_at": 123.4, "future": {"nested": [1]}}, Ping(1)),
        (0x04, {"seq": 9, "seq2": "ignored"}, Pong(9)),
    ],
)
def test_defaults_and_unknown_keys_ignored(frame_type: int, obj: object, expected: object) -> None:
    assert ControlReader().feed(frame(frame_type, obj)) == [expected]


REJECTIONS: list[tuple[str, int, object, str]] = [
    ("not json", 0x03, b"{seq: 1}", "Expecting"),
    ("not utf-8", 0x03, b'{"seq": 1, "x": "\xff"}', "utf-8"),
    ("utf-16", 0x03, '{"seq": 1}'.encode("utf-16"), "utf-8"),
    ("bom", 0x03, b'\xef\xbb\xbf{"seq": 1}', "BOM"),
    ("array", 0x03, [1], "not a JSON object"),
    ("null", 0x05, None, "not a JSON object"),
    ("empty payload", 0x05, b"", "Expecting value"),
    ("trailing data", 0x03, b'{"seq": 1} {}', "Extra data"),
    ("duplicate key", 0x03, b'{"seq": 1, "seq": 2}', "duplicate key"),
    ("nested duplicate", 0x01, HELLO_JSON + b'"labels":{"k":"1","k":"2"}}', "duplicate key"),
    ("missing seq", 0x03, {}, "missing key 'seq'"),
    ("bool seq", 0x03, {"seq": True}, "'seq' must be an integer"),
    ("float seq", 0x04, {"seq": 1.0}, "'seq' must be an integer"),
    ("string seq", 0x03, {"seq": "1"}, "'seq' must be an integer"),
    ("negative seq", 0x03, {"seq": -1}, "'seq' must be an integer"),
    ("seq over 2**53", 0x03, {"seq": 2**53}, "'seq' must be an integer"),
    ("huge seq", 0x03, b'{"seq": ' + b"9" * 5000 + b"}", "digits"),
    ("NaN", 0x02, ACK_JSON + b'"heartbeat_interval":NaN}', "NaN is not a number"),
    ("Infinity", 0x02, ACK_JSON + b'"heartbeat_interval":Infinity}', "Infinity"),
    ("1e400", 0x02, ACK_JSON + b'"heartbeat_interval":1e400}', "heartbeat_interval"),
    (
        "huge int interval",
        0x02,
        ACK_JSON + b'"heartbeat_interval":' + b"9" * 400 + b"}",
        "heartbeat_interval",
    ),
    ("zero interval", 0x02, {**ACK, "heartbeat_interval": 0}, "heartbeat_interval"),
    ("negative interval", 0x02, {**ACK, "heartbeat_interval": -1.5}, "heartbeat_interval"),
    ("interval over an hour", 0x02, {**ACK, "heartbeat_interval": 3600.5}, "heartbeat_interval"),
    ("bool interval", 0x02, {**ACK, "heartbeat_interval": True}, "heartbeat_interval"),
    ("string interval", 0x02, {**ACK, "heartbeat_interval": "2"}, "heartbeat_interval"),
    ("missing node", 0x02, {"accepted": []}, "missing key 'node'"),
    ("missing accepted", 0x02, {"node": "n"}, "missing key 'accepted'"),
    ("rejected as list", 0x02, {**ACK, "rejected": ["api"]}, "'rejected' must be an object"),
    ("rejected reason int", 0x02, {**ACK, "rejected": {"api": 1}}, "'rejected' must be a string"),
    ("missing agent_id", 0x01, {"version": "v", "services": []}, "missing key 'agent_id'"),
    ("missing version", 0x01, {"agent_id": "a", "services": []}, "missing key 'version'"),
    ("missing services", 0x01, {"agent_id": "a", "version": "v"}, "missing key 'services'"),
    (
        "agent_id int",
        0x01,
        {"agent_id": 1, "version": "v", "services": []},
        "'agent_id' must be a string",
    ),
    (
        "services string",
        0x01,
        {"agent_id": "a", "version": "v", "services": "web"},
        "'services' must be a list",
    ),
    ("services of ints", 0x06, {"services": [1]}, "'services' must be a string"),
    ("services null", 0x06, {"services": None}, "'services' must be a list"),
    ("labels list", 0x01, {**HELLO, "labels": []}, "'labels' must be an object"),
    ("label value int", 0x01, {**HELLO, "labels": {"a": 1}}, "'labels' must be a string"),
    ("max_streams float", 0x01, {**HELLO, "max_streams": 1.5}, "'max_streams'"),
    ("protocol string", 0x01, {**HELLO, "protocol": "1"}, "'protocol'"),
    ("reason null", 0x05, {"reason": None}, "'reason' must be a string"),
    ("lone surrogate", 0x05, b'{"reason": "\\ud800"}', "surrogates not allowed"),
    ("lone surrogate key", 0x01, HELLO_JSON + b'"labels":{"\\udc80":"x"}}', "surrogates"),
    ("deep nesting", 0x05, b'{"x": ' + b"[" * 100000 + b"]" * 100000 + b"}", "recursion"),
]


@pytest.mark.parametrize(
    ("why", "frame_type", "obj", "match"), REJECTIONS, ids=[r[0] for r in REJECTIONS]
)
def test_rejections(why: str, frame_type: int, obj: object, match: str) -> None:
    error = feed_error(frame(frame_type, obj), ControlReader(max_payload=1 << 20))
    assert error.code == ErrorCode.PROTOCOL_ERROR
    assert re.search(re.escape(match), error.message, re.IGNORECASE), error.message


def test_unknown_frame_types_are_skipped() -> None:
    data = (
        PREFACE
        + encode_frame(0x07, b"\x00\xffnot json")
        + encode_frame(0x21, b"")
        + encode_control(Ping(1))
        + encode_frame(0x3FFF_FFFF, b"x" * 10)
        + encode_control(Pong(1))
    )
    assert ControlReader().feed(data) == [Ping(1), Pong(1)]


@pytest.mark.parametrize("frame_type", [FrameType.REQUEST, FrameType.RESPONSE])
def test_head_frames_do_not_belong_on_the_control_stream(frame_type: FrameType) -> None:
    assert feed_error(PREFACE + bytes([frame_type])).code == ErrorCode.PROTOCOL_ERROR
    with pytest.raises(ProtocolError, match="head frame"):
        decode_control(frame_type, b"{}")


def test_decode_control_returns_none_for_unknown_type() -> None:
    assert decode_control(0x40, b"anything") is None


@pytest.mark.parametrize("bad", [b"KOKO\x00", b"GET / HTTP/1.1\r\n", encode_control(Ping(1))])
def test_preface_required(bad: bytes) -> None:
    assert feed_error(bad).code == ErrorCode.PROTOCOL_ERROR


def test_declared_length_over_limit_closes_with_protocol_error() -> None:
    reader = ControlReader(max_payload=100)
    error = feed_error(PREFACE + b"\x07" + encode_varint(101), reader)  # even an unknown type
    assert error.code == ErrorCode.PROTOCOL_ERROR
    assert "limit" in error.message
    assert ControlReader().feed(PREFACE + b"\x07" + encode_varint(65536)) == []
    assert feed_error(PREFACE + b"\x03" + encode_varint(65537)).code == ErrorCode.PROTOCOL_ERROR


def test_reader_stays_failed() -> None:
    reader = ControlReader()
    feed_error(frame(0x03, {"seq": "x"}), reader)
    again = feed_error(encode_control(Ping(1)), reader)
    assert again.code == ErrorCode.PROTOCOL_ERROR
    assert "seq" in again.message


def test_messages_before_a_bad_frame_are_not_returned_but_the_error_is() -> None:
    reader = ControlReader()
    assert reader.feed(PREFACE + encode_control(Ping(1))) == [Ping(1)]
    assert feed_error(encode_control(Ping(2)) + frame(3, {}, preface=False), reader)


def test_feed_eof() -> None:
    ControlReader().feed_eof()  # nothing received: ends cleanly
    reader = ControlReader()
    reader.feed(PREFACE + encode_control(Ping(1)))
    reader.feed_eof()  # between frames
    for partial in (PREFACE[:3], PREFACE + b"\x03", PREFACE + encode_control(Ping(1))[:-1]):
        reader = ControlReader()
        reader.feed(partial)
        with pytest.raises(ProtocolError, match="mid-frame"):
            reader.feed_eof()


ENCODER_REJECTIONS: list[tuple[ControlMessage, str]] = [
    (Ping(-1), "'seq' must be an integer"),
    (Ping(2**53), "'seq' must be an integer"),
    (Ping(True), "'seq' must be an integer"),
    (Pong(1.5), "'seq' must be an integer"),  # type: ignore[arg-type]
    (HelloAck("n", (), heartbeat_interval=float("nan")), "not JSON-serializable|Out of range"),
    (HelloAck("n", (), heartbeat_interval=0.0), "heartbeat_interval"),
    (HelloAck("n", (), heartbeat_interval=7200.0), "heartbeat_interval"),
    (Hello("a", "v", (), labels=(("k", "1"), ("k", "2"))), "not representable"),
    (HelloAck("n", (), rejected=(("s", "a"), ("s", "b"))), "not representable"),
    (Hello("a", "v", ("x",), max_streams=-1), "'max_streams'"),
    (Drain("\ud800"), "surrogates not allowed"),
    (Services((1,)), "'services' must be a string"),  # type: ignore[arg-type]
    (Hello("a", "v", (), labels=((1, "x"),)), "not representable"),  # type: ignore[arg-type]
    (Drain(b"x"), "not JSON-serializable"),  # type: ignore[arg-type]
    (Drain("x" * 70000), "more than 65536"),
]


@pytest.mark.parametrize(("message", "match"), ENCODER_REJECTIONS)
def test_encoder_refuses_what_a_decoder_would_reject(message: ControlMessage, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        encode_control(message)


def test_encoder_payload_limit_is_adjustable() -> None:
    big = Drain("x" * 70000)
    assert ControlReader(max_payload=1 << 17).feed(
        encode_control(big, preface=True, max_payload=1 << 17)
    ) == [big]


def test_encoder_rejects_non_messages() -> None:
    with pytest.raises(TypeError):
        encode_control("ping")  # type: ignore[arg-type]
