"""The byte pumps between a tunnel stream and an origin connection.

Each awaits the other side's flow control before moving more: `TunnelStream.write` waits
while the peer has not read enough, `OriginConnection.drain` while the origin has not. None
of them buffers more than one read.
"""

from __future__ import annotations

from dataclasses import dataclass

from common.transport import TunnelStream
from common.wire import ErrorCode, ProtocolError
from edge.origin_connection import OriginConnection
from edge.origin_errors import OriginClosed

READ_SIZE = 65536


@dataclass(slots=True)
class Traffic:
    """Body bytes moved: tunnel → origin (`bytes_in`) and origin → tunnel (`bytes_out`)."""

    bytes_in: int = 0
    bytes_out: int = 0


async def pump_down(conn: OriginConnection, stream: TunnelStream, traffic: Traffic) -> None:
    """Origin → tunnel until the end of the response (or of the raw pipe), then FIN."""
    while chunk := await conn.read():
        await stream.write(chunk)
        traffic.bytes_out += len(chunk)
    await stream.write_eof()


async def upload(
    stream: TunnelStream,
    conn: OriginConnection,
    expected: int | None,
    data: bytes,
    traffic: Traffic,
) -> None:
    """Tunnel → origin request body from `data` on, checked against its declared length
    (`expected`, None when it ends at FIN), re-framed by the connection.

    Raises:
        ProtocolError: the body is longer or shorter than its `content-length`.
    """
    received = 0
    sink = True
    while data:
        received += len(data)
        traffic.bytes_in = received
        if expected is not None and received > expected:
            raise ProtocolError(ErrorCode.PROTOCOL_ERROR, "request body over its content-length")
        sink = sink and await forward(conn, data)
        data = await stream.read(READ_SIZE)
    if expected is not None and received < expected:
        raise ProtocolError(ErrorCode.PROTOCOL_ERROR, "request body under its content-length")
    if sink:
        try:
            conn.end_body()
        except OriginClosed:
            pass  # the origin answered and closed; the response side reports what matters


async def pipe_up(
    stream: TunnelStream, conn: OriginConnection, first: bytes | None, traffic: Traffic
) -> None:
    """Tunnel → origin raw bytes until FIN, then half-close towards the origin.

    `first` is what an earlier read returned (b"": FIN already seen), None to read first.
    """
    data = await stream.read(READ_SIZE) if first is None else first
    sink = True
    while data:
        traffic.bytes_in += len(data)
        sink = sink and await forward(conn, data)
        data = await stream.read(READ_SIZE)
    if sink:
        conn.write_eof()


async def forward(conn: OriginConnection, data: bytes) -> bool:
    """Send to the origin with backpressure; False once the origin has closed (what is
    left of the request is then read and dropped: the response side reports the outcome)."""
    try:
        conn.send_body(data)
        await conn.drain()
    except OriginClosed:
        return False
    return True


async def discard(stream: TunnelStream, data: bytes) -> None:
    """Read and drop the rest of the stream (`data`: the last read)."""
    while data:
        data = await stream.read(READ_SIZE)
