"""`common.streams.read_head`: the async glue between a TunnelStream and a HeadReader.

The stream here is an in-memory stand-in for the transport (the glue is all that is under
test; the QUIC shell has its own tests over real sockets).
"""

from __future__ import annotations

import pytest

from common.streams import read_head
from common.transport import StreamReset
from common.wire import (
    PREFACE,
    ErrorCode,
    HeadReader,
    ProtocolError,
    RequestHead,
    ResponseHead,
    encode_request,
    encode_response,
)


class ScriptedStream:
    """Yields the given chunks from `read`, then b"" (FIN), or raises a scripted error."""

    def __init__(self, *chunks: bytes | Exception) -> None:
        self._chunks = list(chunks)
        self.reads = 0

    @property
    def stream_id(self) -> int:
        return 4

    async def read(self, max_bytes: int = 65536) -> bytes:
        self.reads += 1
        if not self._chunks:
            return b""
        chunk = self._chunks.pop(0)
        if isinstance(chunk, Exception):
            raise chunk
        assert 0 < len(chunk) <= max_bytes
        return chunk

    async def write(self, data: bytes) -> None:
        raise AssertionError("read_head never writes")

    async def write_eof(self) -> None:
        raise AssertionError("read_head never writes")

    def reset(self, code: int) -> None:
        raise AssertionError("read_head leaves resets to its caller")


REQUEST = RequestHead("web", "r1", "203.0.113.9", method="POST", target="/", authority="h")


async def test_head_in_one_read_with_body() -> None:
    stream = ScriptedStream(encode_request(REQUEST) + b"hello", b"more body")
    head, leftover = await read_head(stream, HeadReader.request())
    assert (head, leftover) == (REQUEST, b"hello")
    assert stream.reads == 1  # the rest of the body is left in the stream


async def test_head_over_many_reads() -> None:
    response = ResponseHead(200, ((b"content-length", b"4"),))
    head_bytes = encode_response(response)
    data = head_bytes + b"body"
    stream = ScriptedStream(*(data[i : i + 3] for i in range(0, len(data), 3)))
    head, leftover = await read_head(stream, HeadReader.response())
    assert head == response
    last_read_end = min(-(-len(head_bytes) // 3) * 3, len(data))
    assert leftover == data[len(head_bytes) : last_read_end]
    rest = b""
    while chunk := await stream.read():
        rest += chunk
    assert leftover + rest == b"body"


@pytest.mark.parametrize("chunks", [(), (PREFACE,), (encode_request(REQUEST)[:-1],)])
async def test_fin_before_the_head_is_a_protocol_error(chunks: tuple[bytes, ...]) -> None:
    with pytest.raises(ProtocolError) as info:
        await read_head(ScriptedStream(*chunks), HeadReader.request())
    assert info.value.code == ErrorCode.PROTOCOL_ERROR


async def test_malformed_head_raises_its_code() -> None:
    stream = ScriptedStream(b"GET / HTTP/1.1\r\n\r\n")
    with pytest.raises(ProtocolError) as info:
        await read_head(stream, HeadReader.request())
    assert info.value.code == ErrorCode.PROTOCOL_ERROR
    too_big = ScriptedStream(encode_request(REQUEST))
    with pytest.raises(ProtocolError) as info:
        await read_head(too_big, HeadReader.request(max_size=10))
    assert info.value.code == ErrorCode.HEAD_TOO_LARGE


async def test_transport_errors_pass_through() -> None:
    stream = ScriptedStream(PREFACE, StreamReset(ErrorCode.CANCELLED))
    with pytest.raises(StreamReset) as info:
        await read_head(stream, HeadReader.request())
    assert info.value.code == ErrorCode.CANCELLED
