"""The QUIC shell against hostile or broken input: pre-aioquic filtering (threats.md T4),
timeouts, and failures contained to one connection."""

from __future__ import annotations

import asyncio
import os
import socket
import ssl
from pathlib import Path

import pytest
from aioquic.asyncio.client import connect as aioquic_connect
from aioquic.quic.configuration import QuicConfiguration
from aioquic.quic.connection import QuicConnection
from aioquic.quic.packet import encode_quic_version_negotiation

from common.quic import QuicOptions, QuicTunnelConnection, connect
from common.transport import ConnectionClosed
from common.wire.errors import ErrorCode
from tests.common.quic_support import HOST, Accepted, Authority, dialled, running_server
from tests.common.test_quic_mtls import Recorder


@pytest.fixture
def ca(tmp_path: Path) -> Authority:
    return Authority(tmp_path / "ca")


def udp_probe(port: int, payload: bytes, wait: float = 0.3) -> bytes | None:
    """Send one datagram from a fresh socket; return the answer, if any."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.settimeout(wait)
        sock.sendto(payload, (HOST, port))
        try:
            return sock.recv(65536)
        except TimeoutError:
            return None


def long_header(version: int, size: int) -> bytes:
    """A long-header packet (type INITIAL) of `version`, padded to `size` bytes."""
    header = bytes([0xC0]) + version.to_bytes(4, "big") + b"\x08" + os.urandom(8) + b"\x08"
    header += os.urandom(8)
    return header + bytes(size - len(header))


async def in_thread(port: int, payload: bytes) -> bytes | None:
    return await asyncio.to_thread(udp_probe, port, payload)


async def test_datagram_filtering_before_aioquic(ca: Authority) -> None:
    accepted = Accepted()
    async with running_server(ca.issue("ingress", "in-1"), accepted) as server:
        unknown = 0x1A2A3A4A
        vn = encode_quic_version_negotiation(
            source_cid=os.urandom(8), destination_cid=os.urandom(8), supported_versions=[unknown]
        )
        assert await in_thread(server.port, vn) is None  # never answer a VN packet
        assert await in_thread(server.port, long_header(unknown, 1199)) is None
        reply = await in_thread(server.port, long_header(unknown, 1200))
        assert reply is not None and reply[1:5] == b"\0\0\0\0"  # Version Negotiation
        assert len(reply) < 1200  # no amplification
        assert await in_thread(server.port, long_header(1, 1199)) is None  # short INITIAL
        for size in (0, 1, 30, 1500):
            assert await in_thread(server.port, os.urandom(size)) is None
        assert not server._conn_cids  # none of that created state
        async with dialled(server, ca.issue("agent", "a1")):  # still serving
            assert (await accepted.next()).peer.name == "a1"


async def test_unidirectional_stream_closes_the_connection(ca: Authority) -> None:
    accepted = Accepted()
    async with running_server(ca.issue("ingress", "in-1"), accepted) as server:
        configuration = QuicConfiguration(alpn_protocols=["kokoa/1"], is_client=True)
        configuration.verify_mode = ssl.CERT_NONE
        agent = ca.issue("agent", "a1")
        configuration.load_cert_chain(agent.cert, agent.key)
        async with aioquic_connect(
            HOST, server.port, configuration=configuration, create_protocol=Recorder
        ) as client:
            assert isinstance(client, Recorder)
            await accepted.next()
            stream_id = client._quic.get_next_available_stream_id(is_unidirectional=True)
            client._quic.send_stream_data(stream_id, b"hello", end_stream=True)
            client.transmit()
            await asyncio.wait_for(client.wait_closed(), 5)
            assert client.terminated is not None
            assert client.terminated.error_code == ErrorCode.STREAM_NOT_ALLOWED


async def test_failing_handler_closes_only_its_connection(ca: Authority) -> None:
    calls = 0

    async def handler(conn: QuicTunnelConnection) -> None:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise RuntimeError("handler bug")
        await conn.wait_closed()

    async with running_server(ca.issue("ingress", "in-1"), handler) as server:
        first = await connect(HOST, server.port, ca.issue("agent", "a1"), server_name=HOST)
        why = await asyncio.wait_for(first.wait_closed(), 5)
        assert (why.code, why.by_peer) == (ErrorCode.INTERNAL_ERROR, True)
        async with dialled(server, ca.issue("agent", "a2")) as second:
            stream = await second.open_stream()
            await stream.write(b"still fine")
            assert calls == 2


async def test_engine_exception_closes_only_that_connection(ca: Authority) -> None:
    accepted = Accepted()
    async with running_server(ca.issue("ingress", "in-1"), accepted) as server:
        async with dialled(server, ca.issue("agent", "a1")) as healthy:
            broken = await connect(HOST, server.port, ca.issue("agent", "a2"), server_name=HOST)
            victims = {c.peer.name: c for c in [await accepted.next(), await accepted.next()]}

            def explode(*args: object, **kwargs: object) -> None:
                raise ValueError("aioquic bug")

            victims["a2"].engine.receive_datagram = explode  # type: ignore[method-assign]
            stream = await broken.open_stream()
            await stream.write(b"boom")
            why = await asyncio.wait_for(broken.wait_closed(), 5)
            assert (why.code, why.reason, why.by_peer) == (
                ErrorCode.INTERNAL_ERROR,
                "internal error",
                True,
            )
            ok = await healthy.open_stream()
            await ok.write(b"fine")
            await ok.write_eof()
            peer = await victims["a1"].accept_stream()
            assert await peer.read() == b"fine"


async def test_idle_timeout_closes_both_sides(ca: Authority) -> None:
    options = QuicOptions(idle_timeout=0.5)
    accepted = Accepted()
    async with running_server(ca.issue("ingress", "in-1"), accepted, options=options) as server:
        conn = await connect(
            HOST, server.port, ca.issue("agent", "a1"), server_name=HOST, options=options
        )
        peer = await accepted.next()
        pending = await conn.open_stream()
        reader = asyncio.ensure_future(pending.read())  # noqa: TID251
        for side in (conn, peer):
            why = await asyncio.wait_for(side.wait_closed(), 5)
            assert why.by_peer is False and "Idle timeout" in why.reason
        with pytest.raises(ConnectionClosed):
            await reader


async def test_client_handshake_timeout(ca: Authority) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as black_hole:
        black_hole.bind((HOST, 0))
        port = black_hole.getsockname()[1]
        loop = asyncio.get_running_loop()
        started = loop.time()
        with pytest.raises(ConnectionClosed) as closed:
            await connect(
                HOST,
                port,
                ca.issue("agent", "a1"),
                server_name=HOST,
                options=QuicOptions(handshake_timeout=0.3),
            )
        assert "handshake timed out" in closed.value.reason
        assert loop.time() - started < 2.0
        assert black_hole.recv(2000)  # it did try


async def test_server_drops_a_handshake_that_stalls(ca: Authority) -> None:
    options = QuicOptions(handshake_timeout=0.3)
    async with running_server(ca.issue("ingress", "in-1"), Accepted(), options=options) as server:
        client = QuicConnection(
            configuration=QuicConfiguration(alpn_protocols=["kokoa/1"], is_client=True)
        )
        client.connect((HOST, server.port), now=0.0)
        (initial, _), *_ = client.datagrams_to_send(now=0.0)
        assert await in_thread(server.port, initial) is not None  # the server answers…
        assert server._conn_cids
        await asyncio.sleep(0.6)  # …and forgets us once the handshake times out
        assert not server._conn_cids


async def test_unverified_connections_are_capped(
    ca: Authority, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("common.quic.server.MAX_HANDSHAKES", 1)
    options = QuicOptions(handshake_timeout=0.5)
    async with running_server(ca.issue("ingress", "in-1"), Accepted(), options=options) as server:
        answers = []
        for _ in range(2):
            client = QuicConnection(
                configuration=QuicConfiguration(alpn_protocols=["kokoa/1"], is_client=True)
            )
            client.connect((HOST, server.port), now=0.0)
            (initial, _), *_ = client.datagrams_to_send(now=0.0)
            answers.append(await in_thread(server.port, initial))
        assert answers[0] is not None and answers[1] is None
        assert server.refused_handshakes == 1
        await asyncio.sleep(0.8)  # the first one timed out: room again
        async with dialled(server, ca.issue("agent", "a1")) as conn:
            assert conn.peer.name == "in-1"
