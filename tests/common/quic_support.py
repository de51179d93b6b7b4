"""Certificates and endpoints for the QUIC shell tests (real UDP on 127.0.0.1, real mTLS)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec

from common import pki
from common.quic import QuicOptions, QuicServer, QuicTunnelConnection, connect, serve
from common.transport import PeerIdentity

HOST = "127.0.0.1"


@dataclass
class Authority:
    """A throwaway Kokoa CA that writes leaf certificates to `directory`."""

    directory: Path
    name: str = "Test CA"
    key: ec.EllipticCurvePrivateKey = field(init=False)
    cert: x509.Certificate = field(init=False)

    def __post_init__(self) -> None:
        self.key, self.cert = pki.create_ca(self.name, days=2)
        self.directory.mkdir(parents=True, exist_ok=True)
        pki.write_certificate(self.directory / "ca.pem", self.cert)

    def issue(self, role: pki.Role, name: str, *, trust: Authority | None = None) -> pki.TlsFiles:
        """Files for a `role` leaf called `name`, trusting `trust` (default: this CA)."""
        addresses = [HOST] if role == "ingress" else []
        key, cert = pki.issue_certificate(
            self.key, self.cert, role=role, name=name, ip_addresses=addresses, days=1
        )
        assert key is not None
        base = self.directory / f"{role}-{name}"
        pki.write_key(base.with_suffix(".key"), key)
        pki.write_certificate(base.with_suffix(".pem"), cert)
        ca = (trust or self).directory / "ca.pem"
        return pki.TlsFiles(cert=base.with_suffix(".pem"), key=base.with_suffix(".key"), ca=ca)


Handler = Callable[[QuicTunnelConnection], Awaitable[None]]


class Accepted:
    """An `on_connection` handler that hands each verified connection to the test."""

    def __init__(self) -> None:
        self.queue: asyncio.Queue[QuicTunnelConnection] = asyncio.Queue()
        self.count = 0

    async def __call__(self, conn: QuicTunnelConnection) -> None:
        self.count += 1
        await self.queue.put(conn)
        await conn.wait_closed()

    async def next(self) -> QuicTunnelConnection:
        async with asyncio.timeout(5.0):
            return await self.queue.get()


@asynccontextmanager
async def running_server(
    tls: pki.TlsFiles,
    handler: Handler,
    *,
    options: QuicOptions = QuicOptions(),  # noqa: B008
    is_revoked: Callable[[PeerIdentity], bool] | None = None,
) -> AsyncIterator[QuicServer]:
    server = await serve(HOST, 0, tls, handler, options=options, is_revoked=is_revoked)
    try:
        yield server
    finally:
        server.close()
        await server.wait_closed(grace=2.0)


@asynccontextmanager
async def dialled(
    server: QuicServer,
    tls: pki.TlsFiles,
    options: QuicOptions = QuicOptions(),  # noqa: B008
) -> AsyncIterator[QuicTunnelConnection]:
    conn = await connect(HOST, server.port, tls, server_name=HOST, options=options)
    try:
        yield conn
    finally:
        conn.close()
        await asyncio.wait_for(conn.wait_closed(), 5.0)
