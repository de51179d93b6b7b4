"""OriginProxy end to end on one tunnel stream: the tunnel side is an in-memory stream pair
(`memory_tunnel`), the origins are real servers on 127.0.0.1 (the demo origin under uvicorn,
scripted asyncio servers for edge cases)."""

from __future__ import annotations

import asyncio
import hashlib
import inspect
import json
import logging
import socket
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from dataclasses import dataclass

import pytest
import uvloop
from websockets.client import ClientProtocol
from websockets.frames import Frame, Opcode
from websockets.uri import parse_uri

from common.streams import read_head
from common.transport import StreamReset
from common.wire import ErrorCode, HeadReader, RequestHead, ResponseHead, encode_request
from edge.demo_origin import pattern_bytes
from edge.demo_server import RunningOrigin, running
from edge.origin import OriginPool
from edge.origin_config import OriginService
from edge.origin_proxy import OriginProxy
from tests.edge.memory_tunnel import MemoryStream, stream_pair
from tests.edge.raw_origin import Connection, RawOrigin, response

MIB = 1 << 20


@pytest.fixture
async def demo() -> AsyncIterator[RunningOrigin]:
    async with running() as origin:
        yield origin


@pytest.fixture
async def pool() -> AsyncIterator[OriginPool]:
    pool = OriginPool()
    yield pool
    await pool.aclose()


def svc(name: str, origin: str, **options: object) -> OriginService:
    return OriginService.model_validate({"name": name, "origin": origin, **options})


def make_proxy(pool: OriginPool, *services: OriginService) -> OriginProxy:
    table = {s.name: s for s in services}
    return OriginProxy(pool, lambda: table, agent="agent-t")


def req(
    target: str = "/",
    *,
    service: str = "demo",
    method: str = "GET",
    headers: tuple[tuple[bytes, bytes], ...] = (),
    chunked: bool = False,
    rid: str = "rid-1",
) -> RequestHead:
    return RequestHead(
        service, rid, "192.0.2.7", method=method, target=target, authority="demo.test",
        client_port=40000, chunked=chunked, headers=headers,
    )  # fmt: skip


@dataclass
class Result:
    head: ResponseHead | None = None
    body: bytes = b""
    size: int = 0
    sha256: str = ""
    reset: int | None = None

    def header(self, name: bytes) -> bytes | None:
        assert self.head is not None
        return next((v for k, v in self.head.headers if k == name), None)


async def read_response(ingress: MemoryStream, result: Result, keep: int) -> None:
    try:
        head, data = await read_head(ingress, HeadReader.response())
        assert isinstance(head, ResponseHead)
        result.head = head
        digest = hashlib.sha256()
        parts = []
        data = data or await ingress.read()
        while data:
            digest.update(data)
            result.size += len(data)
            if result.size <= keep:
                parts.append(data)
            data = await ingress.read()
        result.body, result.sha256 = b"".join(parts), digest.hexdigest()
    except StreamReset as exc:
        result.reset = exc.code


async def send_request(ingress: MemoryStream, first: bytes, body: Iterable[bytes]) -> None:
    try:
        await ingress.write(first)
        for chunk in body:
            await ingress.write(chunk)
        await ingress.write_eof()
    except StreamReset:
        pass  # the proxy gave up on the request; read_response reports how


async def call(
    proxy: OriginProxy,
    head: RequestHead | bytes,
    body: Iterable[bytes] = (),
    *,
    keep: int = MIB,
) -> Result:
    """One stream: send the head and body, read the response (or the reset)."""
    ingress, agent = stream_pair()
    result = Result()
    first = head if isinstance(head, bytes) else encode_request(head)
    async with asyncio.timeout(60), asyncio.TaskGroup() as tg:
        tg.create_task(proxy.serve(agent))
        tg.create_task(send_request(ingress, first, body))
        await read_response(ingress, result, keep)
    return result


def blocks(total: int, size: int = 256 * 1024) -> Iterable[bytes]:
    block = bytes(range(256)) * (size // 256)
    sent = 0
    while sent < total:
        piece = block[: min(size, total - sent)]
        sent += len(piece)
        yield piece


def sha_of(chunks: Iterable[bytes]) -> str:
    digest = hashlib.sha256()
    for chunk in chunks:
        digest.update(chunk)
    return digest.hexdigest()


# ---- responses ----------------------------------------------------------------------------


async def test_sized_and_chunked_downloads(demo: RunningOrigin, pool: OriginPool) -> None:
    proxy = make_proxy(pool, svc("demo", demo.url))
    sized = await call(proxy, req("/bytes/100000"))
    assert sized.head is not None and sized.head.status == 200 and not sized.head.chunked
    assert sized.header(b"content-length") == b"100000"
    assert sized.body == pattern_bytes(100000)
    chunked = await call(proxy, req("/bytes/100000?chunked=1"))
    assert chunked.head is not None and chunked.head.chunked
    assert chunked.header(b"content-length") is None
    assert chunked.header(b"transfer-encoding") is None
    assert chunked.body == pattern_bytes(100000)
    assert chunked.header(b"x-sha256") == sized.sha256.encode()


async def test_head_204_and_status_codes(demo: RunningOrigin, pool: OriginPool) -> None:
    proxy = make_proxy(pool, svc("demo", demo.url))
    head = await call(proxy, req("/bytes/1000", method="HEAD"))
    assert head.head is not None and (head.head.status, head.body) == (200, b"")
    assert head.header(b"content-length") == b"1000" and not head.head.chunked
    empty = await call(proxy, req("/status/204"))
    assert empty.head == ResponseHead(204, empty.head.headers if empty.head else ())
    assert empty.size == 0 and empty.header(b"content-length") is None
    created = await call(proxy, req("/status/201"))
    assert created.head is not None and created.head.status == 201
    assert created.body == b"status 201\n"


async def test_request_reaches_the_origin_with_our_headers(
    demo: RunningOrigin, pool: OriginPool
) -> None:
    proxy = make_proxy(pool, svc("demo", demo.url))
    forwarded = ((b"x-forwarded-for", b"192.0.2.7"), (b"x-request-id", b"forged"))
    seen = json.loads((await call(proxy, req("/headers", headers=forwarded))).body)
    assert seen["host"] == "demo.test"
    assert seen["x-forwarded-for"] == "192.0.2.7"
    assert seen["x-request-id"] == "rid-1"
    override = make_proxy(pool, svc("demo", demo.url, host_header="internal.app"))
    assert json.loads((await call(override, req("/headers"))).body)["host"] == "internal.app"


@pytest.mark.parametrize("chunked", [False, True])
async def test_64_mib_upload_with_sha256(
    demo: RunningOrigin, pool: OriginPool, chunked: bool
) -> None:
    total = 64 * MIB
    proxy = make_proxy(pool, svc("demo", demo.url))
    length = () if chunked else ((b"content-length", str(total).encode()),)
    head = req("/sha256", method="POST", headers=length, chunked=chunked)
    result = await call(proxy, head, blocks(total))
    assert result.head is not None and result.head.status == 200
    assert json.loads(result.body) == {"sha256": sha_of(blocks(total)), "size": total}


@pytest.mark.parametrize("chunked", [False, True])
async def test_64_mib_download_with_sha256(
    demo: RunningOrigin, pool: OriginPool, chunked: bool
) -> None:
    total = 64 * MIB
    proxy = make_proxy(pool, svc("demo", demo.url))
    result = await call(proxy, req(f"/bytes/{total}?chunked={int(chunked)}"), keep=0)
    assert result.head is not None and result.head.chunked == chunked
    assert result.size == total
    assert result.sha256 == result.header(b"x-sha256").decode()  # type: ignore[union-attr]


async def test_streaming_echo(demo: RunningOrigin, pool: OriginPool) -> None:
    proxy = make_proxy(pool, svc("demo", demo.url))
    total = 3 * MIB + 17
    result = await call(
        proxy, req("/echo", method="POST", chunked=True), blocks(total, 1000), keep=0
    )
    assert result.head is not None and result.head.chunked
    assert (result.size, result.sha256) == (total, sha_of(blocks(total, 1000)))


async def test_interim_responses_are_dropped(pool: OriginPool) -> None:
    async def interim(conn: Connection) -> None:
        await conn.request()
        await conn.send(b"HTTP/1.1 100 Continue\r\n\r\n" + response(200, b"done"))

    async with RawOrigin(interim) as origin:
        proxy = make_proxy(pool, svc("demo", f"http://127.0.0.1:{origin.port}"))
        head = req(method="POST", headers=((b"content-length", b"3"),))
        result = await call(proxy, head, [b"abc"])
        assert result.head is not None and (result.head.status, result.body) == (200, b"done")
        assert origin.requests[0].body == b"abc"


# ---- upgrades and TCP ---------------------------------------------------------------------


async def test_websocket_upgrade_becomes_a_raw_pipe(demo: RunningOrigin, pool: OriginPool) -> None:
    proxy = make_proxy(pool, svc("demo", demo.url))
    client = ClientProtocol(parse_uri("ws://demo.test/ws"))
    handshake = client.connect()
    headers = tuple(
        (k.lower().encode(), v.encode())
        for k, v in handshake.headers.raw_items()
        if k.lower() not in ("host", "connection")
    )
    ingress, agent = stream_pair()
    async with asyncio.timeout(20), asyncio.TaskGroup() as tg:
        tg.create_task(proxy.serve(agent))
        await ingress.write(encode_request(req("/ws", headers=headers)))
        head, rest = await read_head(ingress, HeadReader.response())
        assert isinstance(head, ResponseHead) and head.status == 101
        assert (b"upgrade", b"websocket") in head.headers
        lines = [b"HTTP/1.1 101 Switching Protocols", b"Connection: Upgrade"]
        lines += [name + b": " + value for name, value in head.headers]
        client.receive_data(b"\r\n".join(lines) + b"\r\n\r\n" + rest)
        for message in ("hello", "x" * 100_000):
            client.send_text(message.encode())
            assert await exchange_frame(ingress, client) == Frame(Opcode.TEXT, message.encode())
        client.send_binary(b"\x00\x01binary")
        assert await exchange_frame(ingress, client) == Frame(Opcode.BINARY, b"\x00\x01binary")
        client.send_close()
        assert (await exchange_frame(ingress, client)).opcode == Opcode.CLOSE
        assert await ingress.read() == b""  # the origin closed; the agent sent FIN
        await ingress.write_eof()


async def exchange_frame(ingress: MemoryStream, client: ClientProtocol) -> Frame:
    for data in client.data_to_send():
        await ingress.write(data)
    while True:
        events = client.events_received()
        frames = [e for e in events if isinstance(e, Frame)]
        if frames:
            return frames[0]
        client.receive_data(await ingress.read())


async def test_refused_upgrade_is_a_normal_response(pool: OriginPool) -> None:
    async def refuse(conn: Connection) -> None:
        await conn.request()
        await conn.send(response(400, b"no upgrade for you"))

    async with RawOrigin(refuse) as origin:
        proxy = make_proxy(pool, svc("demo", f"http://127.0.0.1:{origin.port}"))
        result = await call(proxy, req(headers=((b"upgrade", b"websocket"),)))
        assert result.head is not None and result.head.status == 400
        assert result.body == b"no upgrade for you"
        assert origin.requests[0].header(b"connection") == b"upgrade"
        assert pool.idle_count(proxy_service(proxy)) == 0


def proxy_service(proxy: OriginProxy) -> OriginService:
    return proxy._services()["demo"]


async def test_tcp_service_is_a_byte_pipe(pool: OriginPool) -> None:
    async def echo_upper(conn: Connection) -> None:
        conn.writer.write(b"welcome\n")  # server speaks first
        while data := await conn.reader.read(65536):
            await conn.send(data.upper())
        await conn.send(b"bye\n")  # after our FIN reached it: half-close works

    async with RawOrigin(echo_upper) as origin:
        proxy = make_proxy(pool, svc("ssh", f"tcp://127.0.0.1:{origin.port}"))
        head = RequestHead("ssh", "rid-t", "192.0.2.7", kind="tcp", client_port=5)
        result = await call(proxy, head, [b"hello ", b"world\n"])
        assert result.head == ResponseHead(200)
        assert result.body == b"welcome\nHELLO WORLD\nbye\n"


# ---- errors -------------------------------------------------------------------------------


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


async def test_unknown_service_connects_nowhere(pool: OriginPool) -> None:
    async with RawOrigin(lambda conn: conn.request()) as origin:  # type: ignore[arg-type,return-value]
        proxy = make_proxy(pool, svc("other", f"http://127.0.0.1:{origin.port}"))
        assert (await call(proxy, req(service="nope"))).reset == ErrorCode.UNKNOWN_SERVICE
        tcp = RequestHead("other", "rid-t", "192.0.2.7", kind="tcp")
        assert (await call(proxy, tcp)).reset == ErrorCode.UNKNOWN_SERVICE
        assert origin.connections == 0


async def test_origin_down_is_origin_refused(pool: OriginPool) -> None:
    proxy = make_proxy(pool, svc("demo", f"http://127.0.0.1:{closed_port()}"))
    assert (await call(proxy, req())).reset == ErrorCode.ORIGIN_REFUSED
    tcp = make_proxy(pool, svc("t", f"tcp://127.0.0.1:{closed_port()}"))
    head = RequestHead("t", "rid-t", "192.0.2.7", kind="tcp")
    assert (await call(tcp, head)).reset == ErrorCode.ORIGIN_REFUSED


async def test_slow_origin_is_origin_timeout(demo: RunningOrigin, pool: OriginPool) -> None:
    proxy = make_proxy(pool, svc("demo", demo.url, read_timeout=0.3))
    loop = asyncio.get_running_loop()
    started = loop.time()
    assert (await call(proxy, req("/slow?delay=5"))).reset == ErrorCode.ORIGIN_TIMEOUT
    assert loop.time() - started < 2
    ok = await call(proxy, req("/slow?delay=0.05"))
    assert ok.head is not None and ok.head.status == 200


async def test_malformed_origin_response_is_origin_error(pool: OriginPool) -> None:
    async def garbage(conn: Connection) -> None:
        await conn.request()
        await conn.send(b"SSH-2.0-OpenSSH\r\n\r\n")

    async with RawOrigin(garbage) as origin:
        proxy = make_proxy(pool, svc("demo", f"http://127.0.0.1:{origin.port}"))
        assert (await call(proxy, req())).reset == ErrorCode.ORIGIN_ERROR


@pytest.mark.parametrize(
    "first, body",
    [
        (b"HTTP/1.1 GET /\r\n\r\n", []),
        (encode_request(req(method="POST", headers=((b"content-length", b"3"),))), [b"abcd"]),
        (encode_request(req(method="POST", headers=((b"content-length", b"3"),))), [b"ab"]),
        (encode_request(req()), [b"body on a GET without length"]),
    ],
    ids=["preface", "body-too-long", "body-too-short", "unframed-body"],
)
async def test_tunnel_protocol_errors(
    demo: RunningOrigin, pool: OriginPool, first: bytes, body: list[bytes]
) -> None:
    proxy = make_proxy(pool, svc("demo", demo.url))
    result = await call(proxy, first, body)
    assert result.reset == ErrorCode.PROTOCOL_ERROR


async def test_dead_kept_alive_connection_is_retried_once_without_a_body(
    pool: OriginPool,
) -> None:
    async def first_only(conn: Connection) -> None:
        await conn.request()
        await conn.send(response(200, b"ok"))
        await conn.request()  # the second request on a connection: hang up, no answer

    async with RawOrigin(first_only) as origin:
        proxy = make_proxy(pool, svc("demo", f"http://127.0.0.1:{origin.port}"))
        assert (await call(proxy, req())).body == b"ok"
        assert (await call(proxy, req())).body == b"ok"  # retried on a fresh connection
        assert (origin.connections, len(origin.requests)) == (2, 3)
        post = req(method="POST", headers=((b"content-length", b"4"),))
        assert (await call(proxy, post, [b"data"])).reset == ErrorCode.ORIGIN_ERROR
        assert origin.connections == 2  # a request with a body is never replayed


async def test_reset_by_the_ingress_closes_the_origin_connection(
    pool: OriginPool, caplog: pytest.LogCaptureFixture
) -> None:
    async def endless(conn: Connection) -> None:
        await conn.request()
        await conn.send(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
        while True:
            await conn.send(b"10000\r\n" + b"x" * 0x10000 + b"\r\n")

    caplog.set_level(logging.INFO, "kokoa.edge.access")
    async with RawOrigin(endless) as origin:
        proxy = make_proxy(pool, svc("demo", f"http://127.0.0.1:{origin.port}"))
        ingress, agent = stream_pair()
        async with asyncio.timeout(10), asyncio.TaskGroup() as tg:
            served = tg.create_task(proxy.serve(agent))
            await ingress.write(encode_request(req()))
            await ingress.write_eof()
            await read_head(ingress, HeadReader.response())
            await ingress.read()
            ingress.reset(ErrorCode.CANCELLED)
            await served
        await origin.wait_for(lambda: origin.closed == 1)
        assert pool.idle_count(proxy_service(proxy)) == 0
    [record] = [r for r in caplog.records if r.name == "kokoa.edge.access"]
    assert "StreamReset" in record.error  # type: ignore[attr-defined]


async def test_reset_while_the_origin_thinks_closes_the_origin_connection(
    pool: OriginPool,
) -> None:
    async def thinking(conn: Connection) -> None:
        await conn.request()
        await conn.reader.read(1)  # returns at EOF: when the agent closes the connection

    async with RawOrigin(thinking) as origin:
        proxy = make_proxy(pool, svc("demo", f"http://127.0.0.1:{origin.port}"))
        ingress, agent = stream_pair()
        head = req(method="POST", chunked=True)
        async with asyncio.timeout(10), asyncio.TaskGroup() as tg:
            served = tg.create_task(proxy.serve(agent))
            await ingress.write(encode_request(head) + b"partial body")
            await origin.wait_for(lambda: len(origin.requests) == 0 and origin.connections == 1)
            await asyncio.sleep(0.05)
            ingress.reset(ErrorCode.CANCELLED)
            await served
        await origin.wait_for(lambda: origin.closed == 1)


# ---- backpressure and memory --------------------------------------------------------------


async def test_a_stalled_reader_stops_the_origin(pool: OriginPool) -> None:
    """Backpressure end to end: while the tunnel reader pauses, the origin cannot push more
    than the socket buffers, the agent's read buffer and the stream window."""
    sent = 0

    async def firehose(conn: Connection) -> None:
        nonlocal sent
        await conn.request()
        await conn.send(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % (1 << 40))
        block = b"x" * 65536
        while True:
            await conn.send(block)
            sent += len(block)

    async with RawOrigin(firehose) as origin:
        proxy = make_proxy(pool, svc("demo", f"http://127.0.0.1:{origin.port}"))
        ingress, agent = stream_pair(high_water=MIB)
        async with asyncio.timeout(20), asyncio.TaskGroup() as tg:
            tg.create_task(proxy.serve(agent))
            await ingress.write(encode_request(req()))
            await ingress.write_eof()
            await read_head(ingress, HeadReader.response())
            received = 0
            while received < 32 * MIB:
                received += len(await ingress.read())
            await asyncio.sleep(0.5)  # stall: everything in flight settles
            before = sent
            await asyncio.sleep(0.5)
            assert sent - before <= 256 * 1024  # nothing more moves while we do not read
            assert sent - received < 24 * MIB  # socket buffers + 256 KiB + the 1 MiB window
            assert agent.peak_unread_outbound <= MIB + 256 * 1024
            ingress.reset(ErrorCode.CANCELLED)


@pytest.mark.slow
async def test_memory_stays_flat_for_a_large_download_to_a_slow_reader(
    demo: RunningOrigin, pool: OriginPool
) -> None:
    psutil = pytest.importorskip("psutil")
    process = psutil.Process()
    proxy = make_proxy(pool, svc("demo", demo.url))
    total = 512 * MIB
    ingress, agent = stream_pair(high_water=MIB)
    peak = baseline = process.memory_info().rss
    async with asyncio.timeout(120), asyncio.TaskGroup() as tg:
        tg.create_task(proxy.serve(agent))
        await ingress.write(encode_request(req(f"/bytes/{total}")))
        await ingress.write_eof()
        await read_head(ingress, HeadReader.response())
        received = 0
        while data := await ingress.read():
            received += len(data)
            if received % (8 * MIB) < len(data):
                await asyncio.sleep(0.02)  # a slow reader
                peak = max(peak, process.memory_info().rss)
    assert received == total
    assert peak - baseline < 48 * MIB, f"RSS grew by {(peak - baseline) / MIB:.1f} MiB"


async def test_one_access_log_line_per_stream(
    demo: RunningOrigin, pool: OriginPool, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, "kokoa.edge.access")
    proxy = make_proxy(pool, svc("demo", demo.url))
    body = [b"hello"]
    await call(proxy, req("/echo", method="POST", headers=((b"content-length", b"5"),)), body)
    await call(proxy, req(service="nope", rid="rid-2"))
    records = [r for r in caplog.records if r.name == "kokoa.edge.access"]
    assert len(records) == 2
    ok, bad = (vars(r) for r in records)
    expected = {
        "request_id": "rid-1", "service": "demo", "method": "POST", "target": "/echo",
        "status": 200, "bytes_in": 5, "bytes_out": 5, "agent": "agent-t", "error": None,
    }  # fmt: skip
    assert {k: ok[k] for k in expected} == expected
    assert ok["duration_ms"] > 0
    assert (bad["request_id"], bad["status"], bad["error"]) == ("rid-2", 0, "UNKNOWN_SERVICE")


# ---- the same on uvloop (the agent's event loop in production) ----------------------------


@pytest.mark.parametrize(
    "scenario",
    [
        test_sized_and_chunked_downloads,
        test_head_204_and_status_codes,
        test_streaming_echo,
        test_websocket_upgrade_becomes_a_raw_pipe,
        test_slow_origin_is_origin_timeout,
        test_a_stalled_reader_stops_the_origin,
        test_tcp_service_is_a_byte_pipe,
        test_dead_kept_alive_connection_is_retried_once_without_a_body,
    ],
    ids=lambda scenario: scenario.__name__.removeprefix("test_"),
)
def test_on_uvloop(scenario: Callable[..., Awaitable[None]]) -> None:
    async def main() -> None:
        assert isinstance(asyncio.get_running_loop(), uvloop.Loop)
        async with running() as origin:
            pool = OriginPool()
            try:
                if "demo" in inspect.signature(scenario).parameters:
                    await scenario(origin, pool)
                else:
                    await scenario(pool)
            finally:
                await pool.aclose()

    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        runner.run(main())
