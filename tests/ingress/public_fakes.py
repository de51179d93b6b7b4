"""A public front end on 127.0.0.1 with a test gateway and a fake agent behind it.

The gateway routes hosts to services and leases in-memory tunnel streams
(`tests.edge.memory_tunnel`, which keeps the transport's backpressure contract); the fake
agent reads each REQUEST head with the real codec and answers by the target's path:

| path | answer |
|---|---|
| `/headers` | 200 JSON of the request head (pseudo-fields and headers) |
| `/echo` | 200 `:chunked`, the request body streamed back as it arrives |
| `/sha256` | 200 JSON `{"sha256", "size"}` of the request body, sized |
| `/bytes/<n>` | 200 with `content-length: n`, a repeating pattern (`?chunked`: `:chunked`) |
| `/status/<code>` | that status, no body (HEAD- and 304-style: `content-length` if `?length=n`) |
| `/reset/<code>` | the stream reset with that error code, before any answer |
| `/reset-after-head` | 200 sized 1000, then a reset after 10 bytes |
| `/slow-head/<seconds>` | the head after a delay |
| `/sse` | 200 `:chunked`, five events 100 ms apart |
| `/ws` | 101 (when asked to upgrade), then raw echo |
| `/busy-once` | reset with BUSY the first time, then 200 |
| `/interim` | a 103 head (which agents must drop), then 200 |
| `/slow-sink` | reads nothing for 2 s, then the whole body, then 200 |
| anything else | 200 `ok` |

Every REQUEST head is recorded in `agent.heads` (in order), so a test can assert that a
request did, or did not, get through.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from types import TracebackType

import pytest
from prometheus_client import CollectorRegistry
from websockets.frames import Frame, Opcode
from websockets.protocol import State
from websockets.server import ServerProtocol

from common.streams import read_head
from common.transport import StreamReset, TunnelStream
from common.wire import ErrorCode, HeadReader, RequestHead, ResponseHead, encode_response
from ingress.agents import AgentsBusy, NoAgentAvailable
from ingress.metrics import IngressMetrics
from ingress.public import HttpLimits, PublicServer, SniCertificates
from ingress.routing import Route
from tests.edge.memory_tunnel import MemoryStream, stream_pair

PATTERN = bytes(range(256)) * 1024  # 256 KiB


def pattern(size: int) -> bytes:
    """The first `size` bytes of the repeating download pattern."""
    out = PATTERN * (size // len(PATTERN)) + PATTERN[: size % len(PATTERN)]
    return out


class FakeLease:
    """A `TunnelLease` over the ingress end of a memory stream pair."""

    def __init__(self, stream: MemoryStream, agent: str) -> None:
        self.stream: TunnelStream = stream
        self.agent = agent
        self.released = False

    async def __aenter__(self) -> FakeLease:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.released = True


@dataclass
class FakeAgent:
    """Answers tunnel streams as the module docstring says; records what it saw."""

    heads: list[RequestHead] = field(default_factory=list)
    streams: list[MemoryStream] = field(default_factory=list)  # the agent ends
    resets_seen: list[int] = field(default_factory=list)  # codes the ingress reset with
    busy_once_done: bool = False
    tasks: set[asyncio.Task[None]] = field(default_factory=set)

    def start(self, stream: MemoryStream) -> None:
        self.streams.append(stream)
        task = asyncio.get_running_loop().create_task(self._serve(stream))
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def _serve(self, stream: MemoryStream) -> None:
        try:
            head, leftover = await read_head(stream, HeadReader.request())
            assert isinstance(head, RequestHead)
            self.heads.append(head)
            await self._answer(stream, head, leftover)
        except StreamReset as exc:
            self.resets_seen.append(exc.code)

    async def _answer(self, stream: MemoryStream, head: RequestHead, leftover: bytes) -> None:
        path, _, query = head.target.partition("?")
        parts = path.strip("/").split("/")
        name, arg = parts[0], (parts[1] if len(parts) > 1 else "")
        if name == "headers":
            await self._drain(stream, leftover)
            await respond(
                stream, 200, json.dumps(describe(head)).encode(), content_type=b"application/json"
            )
        elif name == "echo":
            await self._echo(stream, leftover)
        elif name == "sha256":
            digest, size = hashlib.sha256(), 0
            data = leftover or await stream.read()
            while data:
                digest.update(data)
                size += len(data)
                data = await stream.read()
            body = json.dumps({"sha256": digest.hexdigest(), "size": size}).encode()
            await respond(stream, 200, body, content_type=b"application/json")
        elif name == "bytes":
            await self._drain(stream, leftover)
            await self._bytes(stream, int(arg), chunked=query == "chunked")
        elif name == "status":
            await self._drain(stream, leftover)
            headers = ((b"content-length", query.split("=")[1].encode()),) if query else ()
            await stream.write(encode_response(ResponseHead(int(arg), headers)))
            await stream.write_eof()
        elif name == "reset":
            stream.reset(int(arg))
        elif name == "reset-after-head":
            await stream.write(encode_response(ResponseHead(200, ((b"content-length", b"1000"),))))
            await stream.write(b"0123456789")
            await asyncio.sleep(0.05)
            stream.reset(ErrorCode.ORIGIN_ERROR)
        elif name == "slow-head":
            await asyncio.sleep(float(arg))
            await self._drain(stream, leftover)
            await respond(stream, 200, b"late")
        elif name == "sse":
            await self._drain(stream, leftover)
            await stream.write(
                encode_response(
                    ResponseHead(200, ((b"content-type", b"text/event-stream"),), chunked=True)
                )
            )
            for i in range(5):
                await stream.write(b"data: %d\n\n" % i)
                await asyncio.sleep(0.1)
            await stream.write_eof()
        elif name == "interim":  # agents must drop 1xx; this one does not
            await stream.write(encode_response(ResponseHead(103, ((b"link", b"</a.css>"),))))
            await respond(stream, 200, b"late")
        elif name == "ws":
            await self._upgrade(stream, head, leftover)
        elif name == "busy-once" and not self.busy_once_done:
            self.busy_once_done = True
            stream.reset(ErrorCode.BUSY)
        elif name == "slow-sink":
            await asyncio.sleep(2)
            await self._drain(stream, leftover)
            await respond(stream, 200, b"drained")
        else:  # answer first: an upgrade request's stream ends only after the answer
            await respond(stream, 200, b"ok")
            await self._drain(stream, leftover)

    async def _drain(self, stream: TunnelStream, data: bytes) -> None:
        data = data or await stream.read()
        while data:
            data = await stream.read()

    async def _echo(self, stream: TunnelStream, data: bytes) -> None:
        await stream.write(encode_response(ResponseHead(200, chunked=True)))
        data = data or await stream.read()
        while data:
            await stream.write(data)
            data = await stream.read()
        await stream.write_eof()

    async def _bytes(self, stream: TunnelStream, size: int, *, chunked: bool) -> None:
        headers = () if chunked else ((b"content-length", b"%d" % size),)
        await stream.write(encode_response(ResponseHead(200, headers, chunked=chunked)))
        sent = 0
        while sent < size:
            piece = PATTERN[: min(len(PATTERN), size - sent)]
            await stream.write(piece)
            sent += len(piece)
        await stream.write_eof()

    async def _upgrade(self, stream: TunnelStream, head: RequestHead, data: bytes) -> None:
        upgrade = dict(head.headers).get(b"upgrade")
        if upgrade is None:
            await respond(stream, 426, b"upgrade required")
            return
        fields = [(b"upgrade", upgrade)]
        key = dict(head.headers).get(b"sec-websocket-key")
        if key is not None:  # answer as a WebSocket origin would (RFC 6455 §4.2.2)
            accept = hashlib.sha1(key + b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11").digest()
            fields.append((b"sec-websocket-accept", base64.b64encode(accept)))
        await stream.write(encode_response(ResponseHead(101, tuple(fields))))
        if key is not None:
            await self._websocket_echo(stream, data)
            return
        data = data or await stream.read()
        while data:
            await stream.write(data)
            data = await stream.read()
        await stream.write_eof()

    async def _websocket_echo(self, stream: TunnelStream, data: bytes) -> None:
        """Echo WebSocket messages (a frame-level server: the handshake is done)."""
        ws = ServerProtocol(state=State.OPEN, max_size=None)
        data = data or await stream.read()
        while data:
            ws.receive_data(data)
            for frame in ws.events_received():
                assert isinstance(frame, Frame)
                if frame.opcode is Opcode.TEXT:
                    ws.send_text(frame.data)
                elif frame.opcode is Opcode.BINARY:
                    ws.send_binary(frame.data)
            for out in ws.data_to_send():
                if not out:  # the closing handshake is over: end the connection
                    await stream.write_eof()
                    return
                await stream.write(out)
            data = await stream.read()
        await stream.write_eof()


async def respond(
    stream: TunnelStream, status: int, body: bytes, *, content_type: bytes = b"text/plain"
) -> None:
    headers = ((b"content-type", content_type), (b"content-length", b"%d" % len(body)))
    await stream.write(encode_response(ResponseHead(status, headers)) + body)
    await stream.write_eof()


def describe(head: RequestHead) -> dict[str, object]:
    return {
        "service": head.service,
        "request_id": head.request_id,
        "client": head.client,
        "client_port": head.client_port,
        "method": head.method,
        "target": head.target,
        "scheme": head.scheme,
        "authority": head.authority,
        "chunked": head.chunked,
        "headers": [[n.decode(), v.decode("latin-1")] for n, v in head.headers],
    }


@dataclass
class FakeGateway:
    """Routes by exact host (`routes`); leases streams to `agent` unless the service is in
    `no_agent` (NoAgentAvailable) or `busy` (AgentsBusy)."""

    agent: FakeAgent
    routes: dict[str, Route] = field(default_factory=dict)
    no_agent: set[str] = field(default_factory=set)
    busy: set[str] = field(default_factory=set)
    high_water: int = 1 << 20
    leases: list[FakeLease] = field(default_factory=list)
    routed: list[tuple[str, str]] = field(default_factory=list)

    def route(self, host: str, path: str) -> Route | None:
        self.routed.append((host, path))
        for route in (r for h, r in self.routes.items() if h == host):
            if (
                route.path_prefix == "/"
                or path == route.path_prefix
                or path.startswith(route.path_prefix + "/")
            ):
                return route
        return None

    async def lease(self, service: str) -> FakeLease:
        if service in self.no_agent:
            raise NoAgentAvailable(service)
        if service in self.busy:
            raise AgentsBusy(service, "every agent has max_streams in flight")
        ingress_end, agent_end = stream_pair(self.high_water)
        self.agent.start(agent_end)
        lease = FakeLease(ingress_end, f"agent-{len(self.leases) + 1}")
        self.leases.append(lease)
        return lease


@dataclass
class Front:
    """A running front end: its server, gateway, agent, metrics and listening port."""

    server: PublicServer
    gateway: FakeGateway
    agent: FakeAgent
    registry: CollectorRegistry
    port: int
    limits: list[HttpLimits]

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def sample(self, name: str, **labels: str) -> float:
        value = self.registry.get_sample_value(name, labels)
        return 0.0 if value is None else value

    async def open(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        return await asyncio.open_connection("127.0.0.1", self.port)


DEFAULT_ROUTES = {
    "app.test": Route("app"),
    "api.test": Route("api", "/v1", strip_prefix=True),
    "down.test": Route("down"),
    "full.test": Route("full"),
}


@asynccontextmanager
async def running_front(
    limits: HttpLimits | None = None,
    *,
    tls: SniCertificates | None = None,
    redirect_to_https_port: int | None = None,
    high_water: int = 1 << 20,
) -> AsyncIterator[Front]:
    agent = FakeAgent()
    gateway = FakeGateway(agent, dict(DEFAULT_ROUTES), {"down"}, {"full"}, high_water)
    registry = CollectorRegistry()
    current = [limits or HttpLimits()]
    server = PublicServer(
        gateway, IngressMetrics(registry), node="test-node", limits=lambda: current[0]
    )
    listener = await server.listen(
        "127.0.0.1", 0, tls=tls, redirect_to_https_port=redirect_to_https_port
    )
    port = listener.sockets[0].getsockname()[1]
    try:
        yield Front(server, gateway, agent, registry, port, current)
    finally:
        await server.drain(0.5)
        for task in list(agent.tasks):
            task.cancel()
        await asyncio.gather(*agent.tasks, return_exceptions=True)


@pytest.fixture
async def front() -> AsyncIterator[Front]:
    async with running_front() as f:
        yield f


async def eventually(probe: Callable[[], object]) -> None:
    """Wait (up to 5 s) until `probe()` is true: for state that other tasks change."""
    async with asyncio.timeout(5):
        while not probe():  # noqa: ASYNC110 (the state has no event to wait on)
            await asyncio.sleep(0.01)


async def read_response(
    reader: asyncio.StreamReader, *, head_request: bool = False
) -> tuple[int, dict[str, str], bytes]:
    """One HTTP/1.1 response from a raw connection (sized, chunked or close-delimited)."""
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ")[1])
    headers: dict[str, str] = {}
    for line in lines[1:]:
        if line:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
    if head_request or status in (101, 204, 304) or status < 200:
        body = b""
    elif "content-length" in headers:
        body = await reader.readexactly(int(headers["content-length"]))
    elif headers.get("transfer-encoding") == "chunked":
        body = await read_chunked(reader)
    else:
        body = await reader.read()
    return status, headers, body


async def read_chunked(reader: asyncio.StreamReader) -> bytes:
    parts: list[bytes] = []
    while True:
        size = int((await reader.readuntil(b"\r\n"))[:-2], 16)
        data = await reader.readexactly(size + 2)
        if size == 0:
            return b"".join(parts)
        parts.append(data[:-2])
