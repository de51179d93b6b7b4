"""Property tests of the codec (Hypothesis).

* Round trip: any valid head or control message, encoded and fed back in any chunking,
  decodes to itself, and the body bytes after a head come out intact.
* Symmetry: an encoder either raises ValueError or produces bytes that decode to the same
  value; whatever a decoder accepts re-encodes to the same value.
* The fuzz invariant (h11's): mutated or random bytes, in any chunking, are parsed or raise
  ProtocolError — any other exception is a bug — and the outcome does not depend on chunking.
"""

from __future__ import annotations

import ipaddress
import itertools
from collections.abc import Callable

from hypothesis import event, example, given, settings
from hypothesis import strategies as st

from common.wire import (
    HOP_BY_HOP,
    PREFACE,
    ControlMessage,
    ControlReader,
    Drain,
    ErrorCode,
    FrameType,
    HeadReader,
    Hello,
    HelloAck,
    Ping,
    Pong,
    ProtocolError,
    RequestHead,
    ResponseHead,
    Services,
    decode_varint,
    encode_control,
    encode_frame,
    encode_request,
    encode_response,
    encode_varint,
    fields,
)

TCHAR_LOWER = "!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyz"
TCHAR = TCHAR_LOWER + "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
MAX_JSON_INT = 2**53 - 1

# ---------------------------------------------------------------- valid values


def visible(min_size: int = 1) -> st.SearchStrategy[str]:
    """Text without spaces or control characters (pseudo-field values such as :service)."""
    chars = st.characters(min_codepoint=0x21, codec="utf-8", exclude_characters="\x7f")
    return st.text(chars, min_size=min_size, max_size=12)


header_names = st.text(TCHAR_LOWER, min_size=1, max_size=12).map(str.encode)
header_values = st.binary(max_size=24).map(lambda b: b.translate(None, b"\r\n\x00"))
headers = st.lists(
    st.tuples(
        header_names.filter(lambda n: n not in HOP_BY_HOP and n != b"content-length"),
        header_values,
    ),
    max_size=6,
)


@st.composite
def with_body_framing(draw: st.DrawFn) -> tuple[bool, tuple[tuple[bytes, bytes], ...]]:
    """(chunked, headers), with zero or more agreeing content-length headers when not chunked."""
    found = draw(headers)
    chunked = draw(st.booleans())
    if not chunked:
        length = draw(st.integers(0, 10**19 - 1))
        for _ in range(draw(st.integers(0, 2))):
            found.insert(draw(st.integers(0, len(found))), (b"content-length", b"%d" % length))
    return chunked, tuple(found)


@st.composite
def request_heads(draw: st.DrawFn) -> RequestHead:
    service, request_id = draw(visible()), draw(visible())
    client = str(draw(st.ip_addresses()))
    port = draw(st.integers(0, 65535))
    if draw(st.booleans()):
        return RequestHead(service, request_id, client, "tcp", client_port=port)
    chunked, found = draw(with_body_framing())
    return RequestHead(
        service,
        request_id,
        client,
        method=draw(st.text(TCHAR, min_size=1, max_size=8)),
        target=draw(st.one_of(st.just("*"), visible(0).map(lambda t: "/" + t))),
        scheme=draw(st.sampled_from(["http", "https"])),
        authority=draw(visible(0)),
        client_port=port,
        chunked=chunked,
        headers=found,
    )


@st.composite
def response_heads(draw: st.DrawFn) -> ResponseHead:
    chunked, found = draw(with_body_framing())
    return ResponseHead(draw(st.integers(100, 599)), found, chunked)


text = st.text(st.characters(codec="utf-8"), max_size=12)
json_ints = st.integers(0, MAX_JSON_INT)
text_maps = st.dictionaries(text, text, max_size=4).map(lambda d: tuple(d.items()))
control_messages: st.SearchStrategy[ControlMessage] = st.one_of(
    st.builds(Hello, text, text, st.tuples(text, text), json_ints, json_ints, text_maps),
    st.builds(
        HelloAck,
        text,
        st.lists(text, max_size=4).map(tuple),
        text_maps,
        st.one_of(
            st.floats(0, 3600, exclude_min=True),
            st.integers(1, 3600),
        ),
    ),
    st.builds(Ping, json_ints),
    st.builds(Pong, json_ints),
    st.builds(Drain, text),
    st.builds(Services, st.lists(text, max_size=4).map(tuple)),
)


def chunked(data: bytes, draw: st.DataObject) -> list[bytes]:
    """`data` split at arbitrary points (empty chunks included)."""
    cuts = sorted(draw.draw(st.lists(st.integers(0, len(data)), max_size=8), label="cuts"))
    bounds = [0, *cuts, len(data)]
    return [data[a:b] for a, b in itertools.pairwise(bounds)]


# ---------------------------------------------------------------- round trips


@given(request_heads(), st.binary(max_size=32), st.data())
def test_request_round_trip_in_any_chunking(
    head: RequestHead, body: bytes, data: st.DataObject
) -> None:
    outcome = feed_head(HeadReader.request, chunked(encode_request(head) + body, data))
    assert outcome == ("head", head, body)


@given(response_heads(), st.binary(max_size=32), st.data())
def test_response_round_trip_in_any_chunking(
    head: ResponseHead, body: bytes, data: st.DataObject
) -> None:
    outcome = feed_head(HeadReader.response, chunked(encode_response(head) + body, data))
    assert outcome == ("head", head, body)


@given(st.lists(control_messages, max_size=6), st.data())
def test_control_round_trip_in_any_chunking(
    messages: list[ControlMessage], data: st.DataObject
) -> None:
    stream = PREFACE + b"".join(encode_control(m) for m in messages)
    assert feed_control(chunked(stream, data)) == (messages, None)


# ---------------------------------------------------------------- encoder/decoder symmetry

loose_names = st.one_of(
    header_names,
    st.sampled_from([*sorted(HOP_BY_HOP), b"content-length", b"upgrade", b"Host", b"", b"a b"]),
    st.binary(max_size=4),
)
loose_values = st.one_of(
    header_values,
    st.sampled_from([b"1", b"0", b"12", b"a\r\nb", b"\x00", b"-1"]),
    st.binary(max_size=4),
)
loose_headers = st.lists(st.tuples(loose_names, loose_values), max_size=4).map(tuple)
loose_text = st.one_of(
    visible(0), st.text(max_size=6), st.sampled_from(["", "*", "/", "a b", "\udc80"])
)
loose_requests = st.builds(
    RequestHead,
    service=loose_text,
    request_id=loose_text,
    client=st.one_of(st.ip_addresses().map(str), loose_text),
    kind=st.sampled_from(["http", "tcp", "udp"]),
    method=st.one_of(st.just("GET"), loose_text),
    target=st.one_of(st.just("/"), loose_text),
    scheme=st.sampled_from(["http", "https", "ftp", ""]),
    authority=loose_text,
    client_port=st.integers(-2, 70000),
    chunked=st.booleans(),
    headers=loose_headers,
)


@given(st.one_of(request_heads(), loose_requests))
def test_request_encoder_raises_value_error_or_round_trips(head: RequestHead) -> None:
    try:
        encoded = encode_request(head)
    except ValueError:
        event("encoder refused")
        return
    event("encoded")
    assert HeadReader.request().feed(encoded) == head


@given(
    st.one_of(
        response_heads(),
        st.builds(ResponseHead, st.integers(0, 1000), loose_headers, st.booleans()),
    )
)
def test_response_encoder_raises_value_error_or_round_trips(head: ResponseHead) -> None:
    try:
        encoded = encode_response(head)
    except ValueError:
        event("encoder refused")
        return
    event("encoded")
    assert HeadReader.response().feed(encoded) == head


pseudo_names = st.sampled_from(
    [
        *(b":service", b":kind", b":method", b":target", b":scheme", b":authority"),
        *(b":client", b":client-port", b":request-id", b":chunked", b":status", b":path"),
    ]
)
pseudo_values = st.one_of(
    visible(0).map(str.encode),
    st.sampled_from([b"tcp", b"http", b"https", b"1", b"200", b"/", b"*", b"GET", b"::1", b"80"]),
)
loose_field = st.one_of(
    st.tuples(pseudo_names, pseudo_values), st.tuples(loose_names, loose_values)
)
Fields = list[tuple[bytes, bytes]]


def field_bytes(fields: Fields) -> bytes:
    return b"".join(encode_varint(len(n)) + n + encode_varint(len(v)) + v for n, v in fields)


def split_encoded(encoded: bytes) -> tuple[FrameType, Fields]:
    """A test-side reading of PREFACE + head frame, straight from the spec's layout."""
    frame_type, pos = decode_varint(encoded, len(PREFACE)) or (0, 0)
    length, pos = decode_varint(encoded, pos) or (0, 0)
    assert pos + length == len(encoded)
    fields: Fields = []
    while pos < len(encoded):
        size, pos = decode_varint(encoded, pos) or (0, 0)
        name, pos = encoded[pos : pos + size], pos + size
        size, pos = decode_varint(encoded, pos) or (0, 0)
        fields.append((name, encoded[pos : pos + size]))
        pos += size
    return FrameType(frame_type), fields


@st.composite
def perturbed_heads(draw: st.DrawFn) -> tuple[FrameType, Fields]:
    """The fields of a valid head with a few edits: mostly invalid, often still valid."""
    encoded = draw(
        st.one_of(request_heads().map(encode_request), response_heads().map(encode_response))
    )
    frame_type, fields = split_encoded(encoded)
    for _ in range(draw(st.integers(0, 3))):
        at = draw(st.integers(0, len(fields)))
        op = draw(st.sampled_from(["drop", "repeat", "swap", "value", "insert"]))
        if op == "insert" or not fields:
            fields.insert(at, draw(loose_field))
            continue
        at = min(at, len(fields) - 1)
        if op == "drop":
            del fields[at]
        elif op == "repeat":
            fields.insert(draw(st.integers(0, len(fields))), fields[at])
        elif op == "swap":
            other = draw(st.integers(0, len(fields) - 1))
            fields[at], fields[other] = fields[other], fields[at]
        else:
            fields[at] = (fields[at][0], draw(st.one_of(pseudo_values, loose_values)))
    return frame_type, fields


@settings(max_examples=300)
@given(
    st.one_of(
        perturbed_heads(),
        st.tuples(st.sampled_from([FrameType.REQUEST, FrameType.RESPONSE]), st.lists(loose_field)),
    )
)
def test_whatever_decodes_re_encodes_to_itself(case: tuple[FrameType, Fields]) -> None:
    frame_type, fields = case
    try:
        head = HeadReader(frame_type).feed(PREFACE + encode_frame(frame_type, field_bytes(fields)))
    except ProtocolError as exc:
        event(f"decoder refused: {exc.code.name}")
        return
    event(f"decoded {type(head).__name__}")
    if isinstance(head, RequestHead):
        assert HeadReader.request().feed(encode_request(head)) == head
    else:
        assert isinstance(head, ResponseHead)
        assert HeadReader.response().feed(encode_response(head)) == head


loose_text_any = st.one_of(text, st.sampled_from(["\ud800", "a\udfff"]))
loose_ints = st.one_of(json_ints, st.integers(-(2**60), 2**60), st.booleans())
loose_pairs = st.lists(st.tuples(loose_text_any, loose_text_any), max_size=3).map(tuple)
loose_texts = st.lists(loose_text_any, max_size=3).map(tuple)
loose_control = st.one_of(
    st.builds(
        Hello, loose_text_any, loose_text_any, loose_texts, loose_ints, loose_ints, loose_pairs
    ),
    st.builds(
        HelloAck,
        loose_text_any,
        loose_texts,
        loose_pairs,
        st.one_of(st.floats(), st.integers(-5, 5000), st.booleans()),
    ),
    st.builds(Ping, loose_ints),
    st.builds(Pong, loose_ints),
    st.builds(Drain, loose_text_any),
    st.builds(Services, loose_texts),
)


@given(st.one_of(control_messages, loose_control))
def test_control_encoder_raises_value_error_or_round_trips(message: ControlMessage) -> None:
    try:
        encoded = encode_control(message, preface=True)
    except ValueError:
        event("encoder refused")
        return
    event("encoded")
    assert feed_control([encoded]) == ([message], None)


# ---------------------------------------------------------------- the fuzz invariant

Outcome = tuple[object, ...]


def feed_head(factory: Callable[[], HeadReader], chunks: list[bytes]) -> Outcome:
    """("head", head, all body bytes), ("incomplete",) or ("error", code). Nothing else."""
    reader = factory()
    try:
        for i, chunk in enumerate(chunks):
            head = reader.feed(chunk)
            if head is not None:
                return ("head", head, reader.leftover + b"".join(chunks[i + 1 :]))
    except ProtocolError as exc:
        assert isinstance(exc.code, ErrorCode)
        return ("error", exc.code)
    return ("incomplete",)


def feed_control(chunks: list[bytes]) -> tuple[list[ControlMessage], ErrorCode | None]:
    reader = ControlReader(max_payload=4096)
    messages: list[ControlMessage] = []
    try:
        for chunk in chunks:
            messages += reader.feed(chunk)
    except ProtocolError as exc:
        assert isinstance(exc.code, ErrorCode)
        return messages, exc.code
    return messages, None


@st.composite
def mutated(draw: st.DrawFn, base: st.SearchStrategy[bytes]) -> bytes:
    data = bytearray(draw(base))
    for _ in range(draw(st.integers(0, 4))):
        at = draw(st.integers(0, len(data)))
        op = draw(st.sampled_from(["set", "insert", "delete", "truncate"]))
        if op == "set" and at < len(data):
            data[at] = draw(st.integers(0, 255))
        elif op == "insert":
            data[at:at] = draw(st.binary(min_size=1, max_size=4))
        elif op == "delete":
            del data[at : at + draw(st.integers(1, 4))]
        elif op == "truncate":
            del data[at:]
    return bytes(data)


READERS = {FrameType.REQUEST: HeadReader.request, FrameType.RESPONSE: HeadReader.response}
any_reader = st.sampled_from([HeadReader.request, HeadReader.response])
head_inputs = st.one_of(
    # (bytes, the reader they were meant for): valid, perturbed, then byte-mutated heads.
    st.tuples(
        mutated(perturbed_heads().map(lambda c: PREFACE + encode_frame(c[0], field_bytes(c[1])))),
        any_reader,
    ),
    perturbed_heads().flatmap(
        lambda c: st.tuples(
            mutated(st.just(PREFACE + encode_frame(c[0], field_bytes(c[1])))),
            st.just(READERS[c[0]]),
        )
    ),
    st.tuples(st.binary(max_size=64), any_reader),
    st.tuples(st.binary(max_size=64).map(lambda b: PREFACE + b"\x10" + b), any_reader),
)


@settings(max_examples=400)
@given(head_inputs, st.data())
@example((b"", HeadReader.request), None)
@example((PREFACE, HeadReader.request), None)
@example((b"KOKO\x00", HeadReader.request), None)
@example((PREFACE + b"\x10", HeadReader.request), None)
@example((PREFACE + b"\x10\xff\xff\xff\xff\xff\xff\xff\xff", HeadReader.request), None)
@example((PREFACE + b"\x50\x10\x00", HeadReader.request), None)  # non-minimal type varint
@example((PREFACE + b"\x10\x00", HeadReader.request), None)  # empty head
@example((PREFACE + b"\x11\x02\x01:", HeadReader.response), None)  # truncated field
@example((PREFACE + b"\x11\x0a\x07:status\x01\xff", HeadReader.response), None)
def test_head_reader_parses_or_raises_protocol_error(
    case: tuple[bytes, Callable[[], HeadReader]], draw: st.DataObject | None
) -> None:
    data, factory = case
    whole = feed_head(factory, [data])
    event(f"{whole[0]} {whole[1] if whole[0] == 'error' else ''}")
    if draw is None:
        byte_by_byte = feed_head(factory, [data[i : i + 1] for i in range(len(data))])
        assert byte_by_byte == whole
        return
    assert feed_head(factory, chunked(data, draw)) == whole


control_on_the_wire = st.lists(control_messages, max_size=4).map(
    lambda ms: PREFACE + b"".join(encode_control(m) for m in ms)
)
control_inputs = st.one_of(
    mutated(control_on_the_wire),
    st.binary(max_size=64).map(lambda b: PREFACE + b),
    st.tuples(st.integers(0, 0x20), st.binary(max_size=48)).map(
        lambda t: PREFACE + encode_frame(t[0], t[1])
    ),
)


@settings(max_examples=300)
@given(control_inputs, st.data())
@example(PREFACE + encode_frame(3, b'{"seq":' + b"[" * 5000 + b"]" * 5000 + b"}"), None)
@example(PREFACE + encode_frame(3, b'{"seq":1e999}'), None)
@example(PREFACE + encode_frame(2, b'{"node":"n","accepted":[],"heartbeat_interval":1e999}'), None)
@example(PREFACE + encode_frame(1, b'{"agent_id":"\\udfff","version":"","services":[]}'), None)
@example(PREFACE + encode_frame(4, b'\xfe\xff\x00{\x00"'), None)
@example(PREFACE + encode_frame(0x10, b""), None)
@example(PREFACE + b"\x03" + encode_varint(4097), None)
def test_control_reader_parses_or_raises_protocol_error(
    data: bytes, draw: st.DataObject | None
) -> None:
    whole = feed_control([data])
    event(f"{len(whole[0])} messages, error {whole[1]}")
    chunks = [data[i : i + 1] for i in range(len(data))] if draw is None else chunked(data, draw)
    messages, error = feed_control(chunks)
    assert error == whole[1]
    if error is None:
        assert messages == whole[0]


@given(
    st.one_of(
        st.text("0123456789.", max_size=16),
        st.ip_addresses().map(str),
        st.text("0123456789abcdef:.%", max_size=20),
    )
)
@example("0.0.0.0")
@example("255.255.255.255")
@example("256.1.1.1")
@example("01.1.1.1")
@example("1.1.1.1.")
def test_client_address_check_agrees_with_ipaddress(address: str) -> None:
    try:
        ipaddress.ip_address(address)
        expected = True
    except ValueError:
        expected = False
    try:
        assert fields.client(address.encode()) == address
        accepted = True
    except ValueError:
        accepted = False
    assert accepted == expected
