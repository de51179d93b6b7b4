"""The public HTTP/1.1 listeners of an ingress node (plain TCP and TLS) and their lifecycle.

`PublicServer` owns the listening sockets, the client connections, the tasks serving their
requests and one sweeper that enforces every connection's deadlines (head and keep-alive
timeouts) a few times a second: cheaper than a timer per request, and the same walk closes
idle connections when the node drains.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Any

from common.tasks import TaskSet
from ingress.metrics import IngressMetrics
from ingress.public import pages
from ingress.public.connection import HttpConnection
from ingress.public.forward import new_request_id
from ingress.public.gateway import Gateway
from ingress.public.limits import HttpLimits
from ingress.public.request import Rejected
from ingress.public.tls import SniCertificates

log = logging.getLogger("kokoa.ingress.public")
access_log = logging.getLogger("kokoa.ingress.access")

_SWEEP_INTERVAL = 0.5  # seconds, at most; shorter when the header timeout is short


@dataclass(frozen=True, slots=True)
class Listener:
    """What a connection needs to know about the listener that accepted it."""

    server: PublicServer
    scheme: str  # "http" | "https"
    tls: bool
    redirect_port: int | None  # answer every request with a 308 to https on this port


class PublicServer:
    """The public HTTP/1.1 front end; see the module docstring."""

    def __init__(
        self,
        gateway: Gateway,
        metrics: IngressMetrics,
        *,
        node: str,
        limits: Callable[[], HttpLimits],
    ) -> None:
        self.gateway = gateway
        self.metrics = metrics
        self.node = node
        self.limits = limits
        self.draining = False
        self._connections: set[HttpConnection] = set()
        self._servers: list[asyncio.Server] = []
        self._tasks = TaskSet()
        self._sweeper: asyncio.Task[None] | None = None
        self._all_closed: asyncio.Event | None = None

    async def listen(
        self,
        host: str,
        port: int,
        *,
        tls: SniCertificates | None = None,
        redirect_to_https_port: int | None = None,
    ) -> asyncio.Server:
        """Start a listener on `host:port` (port 0: any free port; see `sockets`).

        Args:
            tls: serve HTTPS with these certificates (chosen by SNI).
            redirect_to_https_port: answer every request with `308` to
                `https://<host>:<port><target>` instead of proxying it.

        Raises:
            OSError: the address cannot be bound.
        """
        if self.draining:
            raise RuntimeError("the server is draining")
        listener = Listener(
            self, "https" if tls else "http", tls is not None, redirect_to_https_port
        )
        server = await asyncio.get_running_loop().create_server(
            lambda: HttpConnection(listener),
            host,
            port,
            ssl=tls.server_context() if tls is not None else None,
            ssl_handshake_timeout=self.limits().header_timeout if tls is not None else None,
            backlog=1024,
            reuse_address=True,
        )
        self._servers.append(server)
        if self._sweeper is None:
            self._sweeper = self._tasks.spawn(self._sweep(), name="public http sweeper")
        return server

    async def drain(self, grace: float) -> None:
        """Stop accepting, close idle connections, let requests in flight finish for up to
        `grace` seconds, then abort what is left."""
        self.draining = True
        for server in self._servers:
            server.close()
        for conn in list(self._connections):
            conn.shutdown()
        if self._connections:
            self._all_closed = asyncio.Event()
            try:
                async with asyncio.timeout(grace):
                    await self._all_closed.wait()
            except TimeoutError:
                log.warning("aborting %d connections after the drain grace", len(self._connections))
        for conn in list(self._connections):
            conn.abort()
        await self._tasks.cancel_all()
        self._sweeper = None

    # ---- for the connections ------------------------------------------------------------

    def spawn(self, coro: Coroutine[Any, Any, None], name: str) -> asyncio.Task[None]:
        return self._tasks.spawn(coro, name=name)

    def opened(self, conn: HttpConnection) -> None:
        self._connections.add(conn)
        if self.draining:
            conn.shutdown()

    def closed(self, conn: HttpConnection) -> None:
        self._connections.discard(conn)
        if not self._connections and self._all_closed is not None:
            self._all_closed.set()

    def rejected(
        self, conn: HttpConnection, rejected: Rejected, request_id: str | None, accept: bytes = b""
    ) -> None:
        """Answer a request refused by the parser (the connection closes after it).

        `request_id`: the id of the request it answers, which logs itself; None for a head
        that never became a request (a fresh id, and a log line here).
        """
        log_line = request_id is None
        request_id = request_id or new_request_id()
        self.metrics.reject(rejected.reason)
        problem = pages.Problem(rejected.status, rejected.error, rejected.message)
        conn.write(pages.render(problem, request_id, accept, keep_alive=False))
        if log_line and access_log.isEnabledFor(logging.INFO):
            access_log.info(
                "rejected",
                extra={
                    "request_id": request_id,
                    "status": rejected.status,
                    "error": rejected.message,
                    "client": conn.client[0],
                    "node": self.node,
                },
            )

    @property
    def connections(self) -> int:
        """Open client connections."""
        return len(self._connections)

    async def _sweep(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            limits = self.limits()
            shortest = min(limits.header_timeout, limits.response_head_timeout)
            await asyncio.sleep(min(_SWEEP_INTERVAL, shortest / 4))
            now = loop.time()
            for conn in list(self._connections):
                conn.expire(now)
