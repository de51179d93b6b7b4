"""A small but real origin for the local run and the end-to-end tests: an ASGI app on uvicorn.

| route | what it does |
|---|---|
| `GET /` | an HTML page saying the request came through Kokoa, with the forwarding headers |
| `GET /headers` | the request headers it received, as JSON |
| `POST /echo` | streams the request body back as it arrives (sized if the request was) |
| `POST /sha256?rate=B` | reads the upload as a stream; answers `{"sha256": hex, "size": n}` |
| `GET /bytes/{n}?chunked=0\\|1` | n deterministic pseudo-random bytes, digest in `x-sha256` |
| `GET /sse?count=N&interval=S` | Server-Sent Events, one every S seconds, each flushed at once |
| `GET /slow?delay=S` | answers after S seconds |
| `GET /status/{code}` | answers with that status |
| WebSocket `/ws` | echoes every message, text or binary |

`/sha256?rate=B` is a slow origin: after each piece of body it sleeps as long as reading it at
B bytes/s would take (so it never reads faster than B; meanwhile uvicorn stops reading the
socket and the sender is pushed back), and adds `"waited": seconds` to the answer, the time
it spent waiting for body bytes (near 0 when the sender kept up). Without `rate` it reads as
fast as the body arrives.
`/bytes` repeats one 64 KiB pseudo-random block, so streaming costs no generation and the digest
(hashed once per size, in a thread, then cached) is known before the first byte is sent.
The app is plain ASGI (no framework) so that the edge package does not pull in FastAPI.
`edge.demo_server` serves it on uvicorn.
"""

from __future__ import annotations

import asyncio
import hashlib
import html
import json
import time
from collections import OrderedDict
from collections.abc import AsyncIterator, Awaitable, Callable, MutableMapping
from typing import Any
from urllib.parse import parse_qs

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
Handler = Callable[["_Request", Send], Awaitable[None]]

BLOCK = hashlib.shake_256(b"kokoa demo origin").digest(65536)
MAX_BYTES = 1 << 34  # 16 GiB
MAX_SSE_EVENTS = 10_000
MAX_DELAY = 3600.0
MAX_RATE = float(1 << 40)  # bytes per second
_FORWARDED = ("x-forwarded-for", "x-forwarded-proto", "x-forwarded-host", "x-request-id")


class BadRequest(Exception):
    """A query or path parameter that does not parse; answered with 400."""


class _Request:
    """The parts of an ASGI HTTP scope the handlers look at."""

    def __init__(self, scope: Scope, receive: Receive) -> None:
        self.method: str = scope["method"]
        self.path: str = scope["path"]
        self.receive = receive
        self.headers: list[tuple[str, str]] = [
            (name.decode("latin-1"), value.decode("latin-1")) for name, value in scope["headers"]
        ]
        self.query = parse_qs(scope.get("query_string", b"").decode("latin-1"))

    def header(self, name: str) -> str | None:
        return next((v for k, v in self.headers if k == name), None)

    def number(self, name: str, default: float, *, low: float, high: float) -> float:
        raw = self.query.get(name, [None])[0]
        if raw is None:
            return default
        try:
            value = float(raw)
        except ValueError:
            raise BadRequest(f"{name} must be a number") from None
        if not low <= value <= high:
            raise BadRequest(f"{name} must be between {low:g} and {high:g}")
        return value

    async def body(self) -> AsyncIterator[bytes]:
        """Yield the request body as it arrives."""
        while True:
            message = await self.receive()
            if message["type"] == "http.disconnect":
                return
            if chunk := message.get("body", b""):
                yield chunk
            if not message.get("more_body", False):
                return


async def _start(send: Send, status: int, headers: list[tuple[bytes, bytes]]) -> None:
    await send({"type": "http.response.start", "status": status, "headers": headers})


async def _respond(send: Send, status: int, body: bytes, content_type: bytes) -> None:
    await _start(
        send, status, [(b"content-type", content_type), (b"content-length", b"%d" % len(body))]
    )
    await send({"type": "http.response.body", "body": body})


async def _text(send: Send, status: int, text: str) -> None:
    await _respond(send, status, text.encode(), b"text/plain; charset=utf-8")


async def _json(send: Send, value: object, status: int = 200) -> None:
    await _respond(send, status, json.dumps(value).encode(), b"application/json")


class DemoOrigin:
    """The ASGI application. Holds only a small cache of `/bytes` digests."""

    def __init__(self) -> None:
        self._digests: OrderedDict[int, str] = OrderedDict()
        self._routes: dict[tuple[str, str], Handler] = {
            ("GET", "/"): self._index,
            ("GET", "/headers"): self._headers,
            ("POST", "/echo"): self._echo,
            ("POST", "/sha256"): self._sha256,
            ("GET", "/sse"): self._sse,
            ("GET", "/slow"): self._slow,
        }

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "websocket":
            await self._websocket(scope, receive, send)
        elif scope["type"] == "http":
            request = _Request(scope, receive)
            try:
                await self._route(request)(request, send)
            except BadRequest as exc:
                await _text(send, 400, f"{exc}\n")

    def _route(self, request: _Request) -> Handler:
        method = "GET" if request.method == "HEAD" else request.method
        handler = self._routes.get((method, request.path))
        if handler is not None:
            return handler
        if method == "GET" and request.path.startswith("/bytes/"):
            return self._bytes
        if method == "GET" and request.path.startswith("/status/"):
            return self._status
        if any(path == request.path for _, path in self._routes):
            return _method_not_allowed
        return _not_found

    async def _index(self, request: _Request, send: Send) -> None:
        rows = "".join(
            f"<tr><th>{name}</th><td>{html.escape(request.header(name) or '—')}</td></tr>"
            for name in _FORWARDED
        )
        page = (
            "<!doctype html><html><head><meta charset='utf-8'><title>Kokoa demo</title></head>"
            "<body><h1>Hello through Kokoa!</h1>"
            "<p>This page came from the demo origin, through an ingress node and an edge agent."
            f"</p><table>{rows}</table></body></html>"
        )
        await _respond(send, 200, page.encode(), b"text/html; charset=utf-8")

    async def _headers(self, request: _Request, send: Send) -> None:
        seen: dict[str, str] = {}
        for name, value in request.headers:
            seen[name] = f"{seen[name]}, {value}" if name in seen else value
        await _json(send, seen)

    async def _echo(self, request: _Request, send: Send) -> None:
        headers = [(b"content-type", b"application/octet-stream")]
        length = request.header("content-length")
        if length is not None:
            headers.append((b"content-length", length.encode()))
        await _start(send, 200, headers)
        async for chunk in request.body():
            await send({"type": "http.response.body", "body": chunk, "more_body": True})
        await send({"type": "http.response.body", "body": b""})

    async def _sha256(self, request: _Request, send: Send) -> None:
        rate = request.number("rate", 0, low=1, high=MAX_RATE)  # 0: not given, no limit
        digest = hashlib.sha256()
        size = 0
        body = _Paced(request.body(), rate)
        async for chunk in body:
            digest.update(chunk)
            size += len(chunk)
        answer: dict[str, object] = {"sha256": digest.hexdigest(), "size": size}
        if rate:
            answer["waited"] = round(body.waited, 3)
        await _json(send, answer)

    async def _bytes(self, request: _Request, send: Send) -> None:
        total = _int_in_path(request.path, "/bytes/", 0, MAX_BYTES)
        chunked = request.number("chunked", 0, low=0, high=1) == 1
        headers = [
            (b"content-type", b"application/octet-stream"),
            (b"x-sha256", (await self._digest(total)).encode()),
        ]
        if not chunked:
            headers.append((b"content-length", b"%d" % total))
        await _start(send, 200, headers)
        sent = 0 if request.method != "HEAD" else total
        while sent < total:
            piece = BLOCK if total - sent >= len(BLOCK) else BLOCK[: total - sent]
            sent += len(piece)
            await send({"type": "http.response.body", "body": piece, "more_body": True})
        await send({"type": "http.response.body", "body": b""})

    async def _digest(self, total: int) -> str:
        digest = self._digests.get(total)
        if digest is None:
            digest = await asyncio.to_thread(pattern_sha256, total)
            self._digests[total] = digest
            if len(self._digests) > 64:
                self._digests.popitem(last=False)
        return digest

    async def _sse(self, request: _Request, send: Send) -> None:
        count = int(request.number("count", 5, low=0, high=MAX_SSE_EVENTS))
        interval = request.number("interval", 1.0, low=0, high=MAX_DELAY)
        await _start(
            send,
            200,
            [(b"content-type", b"text/event-stream"), (b"cache-control", b"no-cache")],
        )
        for i in range(count):
            if i:
                await asyncio.sleep(interval)
            event = f"id: {i}\nevent: tick\ndata: {json.dumps({'n': i})}\n\n".encode()
            await send({"type": "http.response.body", "body": event, "more_body": True})
        await send({"type": "http.response.body", "body": b""})

    async def _slow(self, request: _Request, send: Send) -> None:
        delay = request.number("delay", 1.0, low=0, high=MAX_DELAY)
        await asyncio.sleep(delay)
        await _text(send, 200, f"slept {delay:g}s\n")

    async def _status(self, request: _Request, send: Send) -> None:
        code = _int_in_path(request.path, "/status/", 200, 599)
        if code in (204, 304):
            await _start(send, code, [])
            await send({"type": "http.response.body", "body": b""})
        else:
            await _text(send, code, f"status {code}\n")

    async def _websocket(self, scope: Scope, receive: Receive, send: Send) -> None:
        message = await receive()  # websocket.connect
        if scope["path"] != "/ws" or message["type"] != "websocket.connect":
            await send({"type": "websocket.close", "code": 1008})
            return
        await send({"type": "websocket.accept"})
        while True:
            message = await receive()
            if message["type"] != "websocket.receive":
                return
            if message.get("bytes") is not None:
                await send({"type": "websocket.send", "bytes": message["bytes"]})
            else:
                await send({"type": "websocket.send", "text": message.get("text") or ""})


async def _not_found(request: _Request, send: Send) -> None:
    await _text(send, 404, f"no route for {request.path}\n")


async def _method_not_allowed(request: _Request, send: Send) -> None:
    await _text(send, 405, f"{request.method} is not allowed on {request.path}\n")


class _Paced:
    """The pieces of a body, each one followed by a sleep of len/`rate` seconds (`rate` 0:
    none); `waited` adds up the time spent waiting for the next piece."""

    def __init__(self, body: AsyncIterator[bytes], rate: float) -> None:
        self._body = body
        self._rate = rate
        self._last = 0
        self.waited = 0.0

    def __aiter__(self) -> _Paced:
        return self

    async def __anext__(self) -> bytes:
        if self._rate and self._last:
            await asyncio.sleep(self._last / self._rate)
        asked = time.monotonic()
        chunk = await anext(self._body)  # StopAsyncIteration ends the caller's loop
        self.waited += time.monotonic() - asked
        self._last = len(chunk)
        return chunk


def _int_in_path(path: str, prefix: str, low: int, high: int) -> int:
    raw = path[len(prefix) :]
    if not raw.isdigit() or not low <= int(raw) <= high:
        raise BadRequest(f"{prefix}{{n}} takes an integer from {low} to {high}")
    return int(raw)


def pattern_bytes(total: int) -> bytes:
    """The bytes `/bytes/{total}` sends (for tests; builds them in memory)."""
    whole, rest = divmod(total, len(BLOCK))
    return BLOCK * whole + BLOCK[:rest]


def pattern_sha256(total: int) -> str:
    """The sha256 hex digest of `/bytes/{total}`, computed without building the bytes."""
    digest = hashlib.sha256()
    whole, rest = divmod(total, len(BLOCK))
    for _ in range(whole):
        digest.update(BLOCK)
    digest.update(BLOCK[:rest])
    return digest.hexdigest()
