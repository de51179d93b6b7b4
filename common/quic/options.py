"""Tunables of the QUIC transport, with the defaults measured best by `bench/quic_raw.py`."""

from __future__ import annotations

from dataclasses import dataclass

ALPN = "kokoa/1"
MIN_DATAGRAM_SIZE = 1200  # RFC 9000 §14: every QUIC path must carry this much


@dataclass(frozen=True, slots=True)
class QuicOptions:
    """How a QUIC endpoint behaves; one frozen value shared by all its connections.

    Attributes:
        idle_timeout: seconds of silence after which a connection is closed.
        handshake_timeout: seconds a handshake (and the peer's verification) may take.
        max_datagram_size: largest UDP payload we send. 1452 fits a 1500-byte MTU over IPv6;
            lower it for tunnels/PPPoE paths (aioquic does no path-MTU discovery).
        stream_window: receive credit a stream grants beyond what the application has read.
        connection_window: the same for the whole connection.
        high_watermark: `write()` waits while a stream holds more unacknowledged bytes…
        low_watermark: …until they drain below this.
        max_incoming_streams: bidirectional streams the peer may have open at once.
        socket_buffer: SO_RCVBUF/SO_SNDBUF of the UDP socket (the kernel caps it at
            net.core.rmem_max / wmem_max).
        gso: send each burst of equal-size datagrams in one sendmsg() with UDP GSO (Linux;
            off falls back to one send per datagram, for paths that mishandle it).
    """

    idle_timeout: float = 10.0
    handshake_timeout: float = 5.0
    max_datagram_size: int = 1452
    stream_window: int = 1 << 20
    connection_window: int = 16 << 20
    high_watermark: int = 1 << 20
    low_watermark: int = 256 << 10
    max_incoming_streams: int = 1024
    socket_buffer: int = 4 << 20
    gso: bool = True

    def __post_init__(self) -> None:
        if self.idle_timeout <= 0 or self.handshake_timeout <= 0:
            raise ValueError("idle_timeout and handshake_timeout must be positive")
        if not MIN_DATAGRAM_SIZE <= self.max_datagram_size <= 65527:
            raise ValueError(f"max_datagram_size must be within {MIN_DATAGRAM_SIZE}..65527")
        if self.stream_window < 1024 or self.connection_window < self.stream_window:
            raise ValueError("stream_window must be >= 1024 and <= connection_window")
        if not 0 <= self.low_watermark <= self.high_watermark:
            raise ValueError("low_watermark must be within 0..high_watermark")
        if self.max_incoming_streams < 1:
            raise ValueError("max_incoming_streams must be at least 1")
        if self.socket_buffer < 65536:
            raise ValueError("socket_buffer must be at least 65536")
