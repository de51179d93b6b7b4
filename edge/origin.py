"""Connections to origins: opening them (TCP or TLS, with timeouts) and pooling kept-alive ones.

The pool holds idle HTTP/1.1 connections per origin address (scheme, host, port and TLS
settings), most recently used first, at most `max_idle_connections` of the service. A
connection goes back only when its exchange ended cleanly and the origin keeps it alive
(`OriginConnection.reusable`); anything else is closed. Idle connections older than
`idle_timeout` are not reused: most servers close idle connections after a few seconds
(uvicorn 5 s, gunicorn 2 s, Node 5 s), and racing that close costs a failed request.

The pool connects only to the address of a configured `OriginService`; it never follows
redirects or resolves anything a request names.
"""

from __future__ import annotations

import asyncio
import ssl
import time
from pathlib import Path

from common.wire import MAX_HEAD_SIZE
from edge.origin_config import OriginAddress, OriginService
from edge.origin_connection import OriginConnection
from edge.origin_errors import (
    OriginClosed,
    OriginError,
    OriginProtocolError,
    OriginRefused,
    OriginTimeout,
    OriginTLSError,
)
from edge.origin_messages import OriginRequest, OriginResponse

__all__ = [
    "OriginClosed",
    "OriginConnection",
    "OriginError",
    "OriginPool",
    "OriginProtocolError",
    "OriginRefused",
    "OriginRequest",
    "OriginResponse",
    "OriginTLSError",
    "OriginTimeout",
]


class OriginPool:
    """Opens origin connections and keeps idle kept-alive ones for reuse. No global state."""

    def __init__(self, *, idle_timeout: float = 4.0, max_head_size: int = MAX_HEAD_SIZE) -> None:
        self._idle_timeout = idle_timeout
        self._max_head_size = max_head_size
        self._idle: dict[OriginAddress, list[OriginConnection]] = {}
        self._limits: dict[OriginAddress, int] = {}
        self._busy: set[OriginConnection] = set()
        self._tls: dict[tuple[bool, Path | None], tuple[int, ssl.SSLContext]] = {}
        self._closed = False

    async def acquire(self, service: OriginService) -> OriginConnection:
        """A kept-alive idle connection to the service's origin, or a new one.

        Raises:
            OriginRefused, OriginTimeout, OriginTLSError: opening a new connection failed.
        """
        address = service.address
        self._limits[address] = service.max_idle_connections
        idle = self._idle.get(address)
        deadline = time.monotonic() - self._idle_timeout
        while idle:
            conn = idle.pop()
            if conn.idle_alive and conn.idle_since > deadline:
                self._busy.add(conn)
                return conn
            conn.abort()
        return await self.connect(service)

    async def connect(self, service: OriginService, *, raw: bool = False) -> OriginConnection:
        """A new connection to the service's origin (`raw`: a byte pipe, no HTTP).

        Raises:
            OriginRefused: refused, unreachable or not resolvable.
            OriginTimeout: not connected (TLS included) within `connect_timeout`.
            OriginTLSError: the TLS handshake or certificate verification failed.
        """
        if self._closed:
            raise OriginRefused("the origin pool is closed")
        address = service.address
        self._limits[address] = service.max_idle_connections
        context = self._tls_context(address) if address.tls else None
        conn = await _open(address, context, service.connect_timeout, self._max_head_size, raw)
        conn.on_lost = self._forget
        self._busy.add(conn)
        return conn

    def release(self, conn: OriginConnection) -> None:
        """Give a connection back after its exchange: kept if reusable, closed otherwise."""
        self._busy.discard(conn)
        idle = self._idle.setdefault(conn.address, [])
        if self._closed or not conn.reusable or len(idle) >= self._limits.get(conn.address, 0):
            conn.close()
            return
        conn.finish()
        idle.append(conn)

    def idle_count(self, service: OriginService) -> int:
        """How many idle connections to the service's origin are waiting for reuse."""
        return len(self._idle.get(service.address, ()))

    async def aclose(self) -> None:
        """Close every connection, idle or in use; the pool opens none after this."""
        self._closed = True
        conns = [c for idle in self._idle.values() for c in idle] + list(self._busy)
        self._idle.clear()
        self._busy.clear()
        for conn in conns:
            conn.abort()
        await asyncio.sleep(0)  # let the transports run connection_lost

    def _forget(self, conn: OriginConnection) -> None:
        self._busy.discard(conn)
        idle = self._idle.get(conn.address)
        if idle and conn in idle:
            idle.remove(conn)

    def _tls_context(self, address: OriginAddress) -> ssl.SSLContext:
        """One SSL context per (verify, CA bundle), rebuilt when the bundle file changes."""
        key = (address.tls_verify, address.ca)
        version = _file_version(address.ca)
        cached = self._tls.get(key)
        if cached is None or cached[0] != version:
            cached = self._tls[key] = (version, _client_context(address.tls_verify, address.ca))
        return cached[1]


def _file_version(path: Path | None) -> int:
    if path is None:
        return 0
    try:
        return path.stat().st_mtime_ns
    except OSError:
        return -1  # missing: _client_context says so


def _client_context(verify: bool, ca: Path | None) -> ssl.SSLContext:
    try:
        context = ssl.create_default_context(cafile=str(ca) if ca is not None else None)
    except (OSError, ssl.SSLError) as exc:
        raise OriginTLSError(f"cannot load the CA bundle {ca}: {exc}") from None
    if not verify:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    context.set_alpn_protocols(["http/1.1"])
    return context


async def _open(
    address: OriginAddress,
    context: ssl.SSLContext | None,
    connect_timeout: float,
    max_head_size: int,
    raw: bool,
) -> OriginConnection:
    loop = asyncio.get_running_loop()
    where = f"{address.scheme}://{address.host}:{address.port}"
    try:
        async with asyncio.timeout(connect_timeout):
            transport, conn = await loop.create_connection(
                lambda: OriginConnection(address, max_head_size=max_head_size, raw=raw),
                address.host,
                address.port,
            )
            if context is not None:
                await _start_tls(transport, conn, context, where)
    except TimeoutError:
        raise OriginTimeout(f"no connection to {where} within {connect_timeout:g}s") from None
    except OSError as exc:
        raise OriginRefused(f"cannot connect to {where}: {exc}") from None
    return conn


async def _start_tls(
    transport: asyncio.Transport, conn: OriginConnection, context: ssl.SSLContext, where: str
) -> None:
    """TLS over the connected socket: failures here are TLS failures, not refusals."""
    try:
        tls = await asyncio.get_running_loop().start_tls(
            transport, conn, context, server_hostname=conn.address.host
        )
    except BaseException as exc:
        transport.abort()
        if isinstance(exc, OSError):  # ssl.SSLError included
            raise OriginTLSError(f"TLS with {where} failed: {exc!r}") from None
        raise
    if tls is None:
        raise OriginTLSError(f"TLS with {where} failed: connection closed during the handshake")
    conn.connection_made(tls)
