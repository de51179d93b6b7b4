"""Async glue between a `TunnelStream` and the sans-IO head codec.

The only I/O-aware piece of the wire protocol: it moves bytes from the stream into a
`HeadReader` and reports what the reader decided. Transport errors (`StreamReset`,
`ConnectionClosed`) pass through untouched.
"""

from __future__ import annotations

from common.transport import TunnelStream
from common.wire.errors import ErrorCode, ProtocolError
from common.wire.head import HeadReader, RequestHead, ResponseHead

READ_SIZE = 65536


async def read_head(
    stream: TunnelStream, reader: HeadReader
) -> tuple[RequestHead | ResponseHead, bytes]:
    """Read the preface and head frame of one receiving direction of `stream`.

    Returns:
        The head, and the body bytes that arrived in the same reads (possibly empty).

    Raises:
        ProtocolError: the head is malformed or too large, or the peer sent FIN before it
            was complete (`PROTOCOL_ERROR`).
        StreamReset, ConnectionClosed: from the transport.
    """
    while True:
        data = await stream.read(READ_SIZE)
        if not data:
            raise ProtocolError(ErrorCode.PROTOCOL_ERROR, "stream ended before a complete head")
        head = reader.feed(data)
        if head is not None:
            return head, reader.leftover
