"""Kokoa's QUIC transport: a thin asyncio shell over aioquic's sans-IO `QuicConnection`.

`serve()` (ingress node) and `connect()` (edge agent) give `QuicTunnelConnection`s that
implement `common.transport.TunnelConnection`, with mutual TLS checked by `common.pki`,
bounded buffers in both directions, and batched UDP I/O. See docs/protocol.md §1.
"""

from common.quic.client import connect
from common.quic.connection import QuicTunnelConnection
from common.quic.options import ALPN, QuicOptions
from common.quic.server import QuicServer, serve
from common.quic.stream import QuicTunnelStream

__all__ = [
    "ALPN",
    "QuicOptions",
    "QuicServer",
    "QuicTunnelConnection",
    "QuicTunnelStream",
    "connect",
    "serve",
]
