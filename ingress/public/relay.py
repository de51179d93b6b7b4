"""Moving body bytes between a client connection and a tunnel stream, with flow control.

Each pump awaits the other side before moving more: `TunnelStream.write` waits while the
agent has not read enough, `ClientSide.drain` while the client has not. None of them holds
more than one read; `Meter.sent` counts the body bytes that reached the client so far (for
the access log and metrics, also when a pump fails half-way).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from common.transport import TransportError, TunnelStream
from common.wire import ErrorCode, ProtocolError
from ingress.public.body import ClientGone, RequestBody
from ingress.public.response import CONTINUE, LAST_CHUNK, chunk

READ_SIZE = 256 * 1024


class ClientSide(Protocol):
    """The client connection, as the pumps write to it."""

    @property
    def write_paused(self) -> bool: ...
    def write(self, data: bytes) -> None: ...
    def writelines(self, parts: tuple[bytes, ...]) -> None: ...
    async def drain(self) -> None: ...


class Meter(Protocol):
    sent: int


async def sized(
    conn: ClientSide, stream: TunnelStream, head: bytes, data: bytes, size: int, meter: Meter
) -> None:
    """`head`, then exactly `size` body bytes (`data` first), then the stream's FIN.

    Raises:
        ProtocolError: the agent sent more or fewer bytes than `size`.
    """
    remaining = size - len(data)
    if remaining < 0:
        raise ProtocolError(ErrorCode.PROTOCOL_ERROR, "response body over its content-length")
    conn.writelines((head, data))
    meter.sent += len(data)
    while remaining:
        if conn.write_paused:
            await conn.drain()
        data = await stream.read(min(READ_SIZE, remaining))
        if not data:
            raise ProtocolError(ErrorCode.PROTOCOL_ERROR, "response body under its content-length")
        conn.write(data)
        remaining -= len(data)
        meter.sent += len(data)
    await expect_fin(stream, b"")


async def chunked(
    conn: ClientSide, stream: TunnelStream, head: bytes, data: bytes, meter: Meter
) -> None:
    """`head`, then every read of the stream as one chunk (nothing is held back: server-sent
    events arrive as sent), then the last chunk at FIN."""
    conn.writelines((head, *chunk(data)) if data else (head,))
    meter.sent += len(data)
    while True:
        if conn.write_paused:
            await conn.drain()
        data = await stream.read(READ_SIZE)
        if not data:
            conn.write(LAST_CHUNK)
            return
        conn.writelines(chunk(data))
        meter.sent += len(data)


async def until_fin(conn: ClientSide, stream: TunnelStream, data: bytes, meter: Meter) -> None:
    """Unframed bytes, `data` first, until the stream's FIN (close-delimited, or a pipe)."""
    while True:
        if data:
            conn.write(data)
            meter.sent += len(data)
            if conn.write_paused:
                await conn.drain()
        data = await stream.read(READ_SIZE)
        if not data:
            return


async def expect_fin(stream: TunnelStream, data: bytes) -> None:
    """The response has no (more) body: the stream must end here.

    Raises:
        ProtocolError: body bytes where none belong.
    """
    if data or await stream.read(1):
        raise ProtocolError(ErrorCode.PROTOCOL_ERROR, "response body bytes where none belong")


async def upload(
    conn: ClientSide,
    stream: TunnelStream,
    body: RequestBody,
    *,
    expect_continue: bool,
    progress: Callable[[], None],
) -> None:
    """Client → tunnel: the body (after a 101, raw bytes) until its end, then FIN.

    `progress` is called each time the stream has taken a write (and after the FIN).
    Never raises but cancellation: a client that went away resets the stream (and the
    connection cancels the exchange); an agent that stopped reading ends the upload.
    """
    try:
        if expect_continue and not body.received:
            conn.write(CONTINUE)
        while data := await body.take():
            await stream.write(data)
            progress()
        await stream.write_eof()
        progress()
    except ClientGone:
        reset(stream, ErrorCode.CANCELLED)
    except TransportError:
        pass  # the agent stopped reading (it answered early) or the tunnel went away


def reset(stream: TunnelStream, code: ErrorCode) -> None:
    """Reset `stream`, unless its connection is gone already."""
    try:
        stream.reset(code)
    except TransportError:
        pass
