"""What the tunnel protocol needs from the transport under it.

The tunnel (heads, bodies, control messages) runs over any transport that offers ordered,
reliable, flow-controlled bidirectional streams multiplexed on one authenticated connection.
QUIC (`common.quic`) is the first; a TLS-over-TCP transport for networks that block UDP can be
added later without touching `ingress/` or `edge/`, which only see these two interfaces.

Backpressure contract: `TunnelStream.write` returns only when the stream's unacknowledged send
buffer is below its low watermark, and a stream grants the peer new receive credit only for
bytes the application has `read`. So a slow reader at one end slows the writer at the other,
and neither buffers a whole body.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol


class TransportError(Exception):
    """Base of the transport's typed errors."""


class StreamReset(TransportError):
    """The peer reset the stream (or stopped reading it) with an application error code."""

    def __init__(self, code: int) -> None:
        super().__init__(f"stream reset by peer with code {code:#x}")
        self.code = code


class ConnectionClosed(TransportError):
    """The connection is gone: closed by either side, timed out, or lost."""

    def __init__(self, code: int, reason: str, *, by_peer: bool) -> None:
        side = "peer" if by_peer else "local"
        super().__init__(f"connection closed ({side}) code {code:#x}: {reason}")
        self.code = code
        self.reason = reason
        self.by_peer = by_peer


@dataclass(frozen=True, slots=True)
class PeerIdentity:
    """Who is at the other end, taken from its verified certificate.

    `name` is the identity the certificate was issued to (the agent id or the node name);
    `role` is "agent" or "ingress"; `serial` is the certificate serial number (for revocation).
    """

    name: str
    role: str
    serial: int
    org: str | None = None


class TunnelStream(Protocol):
    """One bidirectional stream."""

    @property
    def stream_id(self) -> int: ...

    async def read(self, max_bytes: int = 65536) -> bytes:
        """Return up to `max_bytes` (at least one) bytes, or b"" once the peer finished.

        Raises:
            StreamReset: the peer reset its sending side.
            ConnectionClosed: the connection went away.
        """
        ...

    async def write(self, data: bytes) -> None:
        """Queue `data`, then wait while the send buffer is above the high watermark.

        Raises:
            StreamReset: the peer sent STOP_SENDING (it no longer reads).
            ConnectionClosed: the connection went away.
        """
        ...

    async def write_eof(self) -> None:
        """Finish the sending side (FIN) once everything queued is handed to the transport."""
        ...

    def reset(self, code: int) -> None:
        """Abort both directions with an application error code (RESET_STREAM + STOP_SENDING)."""
        ...


class TunnelConnection(Protocol):
    """One authenticated connection between an edge agent and an ingress node."""

    @property
    def peer(self) -> PeerIdentity: ...

    @property
    def rtt(self) -> float:
        """Smoothed round-trip time in seconds."""
        ...

    async def open_stream(self) -> TunnelStream:
        """Open a new bidirectional stream (waits while the peer's stream limit is reached)."""
        ...

    def open_stream_now(self) -> TunnelStream | None:
        """Open a new bidirectional stream if the peer's stream limit allows it now, else None.

        Raises:
            ConnectionClosed: the connection went away.
        """
        ...

    async def accept_stream(self) -> TunnelStream:
        """Wait for the next stream the peer opened.

        Raises:
            ConnectionClosed: the connection went away.
        """
        ...

    def close(self, code: int = 0, reason: str = "") -> None:
        """Close the connection with an application error code; pending streams fail."""
        ...

    async def wait_closed(self) -> ConnectionClosed:
        """Wait until the connection is gone and say why."""
        ...
