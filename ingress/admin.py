"""The admin listener: liveness, readiness and Prometheus metrics, on its own port.

- `GET /healthz` → 200 while the process runs its event loop.
- `GET /readyz` → 200 when the configuration is loaded and every listener is up, else 503;
  the JSON body says which listeners are up and how many agents are connected.
- `GET /metrics` → the process registry in the Prometheus text format (OpenMetrics if the
  scraper's Accept header asks for it).

A minimal ASGI app served by `uvicorn.Server` inside the node's own event loop: uvicorn
parses HTTP; it installs no signal handlers (the node owns SIGTERM/SIGHUP) and no logging
configuration (the node's JSON lines cover it). The socket is bound by us before serving, so
a port in use is an `OSError` at start-up rather than a `sys.exit` inside uvicorn.
"""

from __future__ import annotations

import contextlib
import json
import socket
from collections.abc import Awaitable, Callable, Iterator, MutableMapping
from dataclasses import asdict, dataclass, field
from typing import Any

import uvicorn
from prometheus_client import CollectorRegistry

from common.metrics import render

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class Readiness:
    """What `/readyz` reports."""

    node: str
    config_loaded: bool
    listeners: dict[str, bool] = field(default_factory=dict)
    agents: int = 0

    @property
    def ready(self) -> bool:
        return self.config_loaded and all(self.listeners.values())


class AdminApp:
    """The ASGI app: three GET endpoints, JSON or Prometheus text."""

    def __init__(self, registry: CollectorRegistry, readiness: Callable[[], Readiness]) -> None:
        self._registry = registry
        self._readiness = readiness

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:  # noqa: ARG002
        if scope["type"] != "http":
            return
        if scope["method"] not in ("GET", "HEAD"):
            await _respond(send, 405, b"method not allowed\n", "text/plain", [(b"allow", b"GET")])
            return
        path = scope["path"]
        if path == "/healthz":
            await _respond(send, 200, b'{"status":"ok"}\n', "application/json")
        elif path == "/readyz":
            status = self._readiness()
            body = json.dumps({"ready": status.ready, **asdict(status)}).encode() + b"\n"
            await _respond(send, 200 if status.ready else 503, body, "application/json")
        elif path == "/metrics":
            body, content_type = render(self._registry, _header(scope, b"accept"))
            await _respond(send, 200, body, content_type)
        else:
            await _respond(send, 404, b"not found\n", "text/plain")


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope["headers"]:
        if key == name:
            return bytes(value).decode("latin-1")
    return None


async def _respond(
    send: Send,
    status: int,
    body: bytes,
    content_type: str,
    extra: list[tuple[bytes, bytes]] | None = None,
) -> None:
    headers = [
        (b"content-type", content_type.encode()),
        (b"content-length", str(len(body)).encode()),
        (b"cache-control", b"no-store"),
        *(extra or []),
    ]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


class _EmbeddedServer(uvicorn.Server):
    """uvicorn without its signal handling: the node decides when the process stops."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


class AdminServer:
    """The admin listener: `bind()` (raises OSError), then `serve()` until `stop()`."""

    def __init__(self, app: AdminApp, host: str, port: int) -> None:
        config = uvicorn.Config(
            app,
            log_config=None,
            log_level="warning",
            access_log=False,
            lifespan="off",
            ws="none",
            http="httptools",
            server_header=False,
            proxy_headers=False,
            timeout_graceful_shutdown=2,
        )
        self._server = _EmbeddedServer(config)
        self._address = (host, port)
        self._socket: socket.socket | None = None

    def bind(self) -> socket.socket:
        """Bind and listen; returns the socket (its port, if 0 was asked for)."""
        host, port = self._address
        family, _, _, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
        sock = socket.create_server(address[:2], family=family, backlog=64)
        sock.setblocking(False)
        self._socket = sock
        self._address = (host, int(sock.getsockname()[1]))
        return sock

    @property
    def port(self) -> int:
        """The port listened on (known once bound)."""
        return self._address[1]

    @property
    def started(self) -> bool:
        return self._server.started

    async def serve(self) -> None:
        """Serve until `stop()`; binds first if `bind()` was not called."""
        sock = self._socket or self.bind()
        try:
            await self._server.serve(sockets=[sock])
        finally:
            sock.close()

    def stop(self) -> None:
        self._server.should_exit = True
