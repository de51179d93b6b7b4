"""Mutual TLS on the QUIC shell: who gets in, who is refused, and with which close code."""

from __future__ import annotations

import asyncio
import ssl
from pathlib import Path

import pytest
from aioquic.asyncio.client import connect as aioquic_connect
from aioquic.asyncio.protocol import QuicConnectionProtocol
from aioquic.quic.configuration import QuicConfiguration
from aioquic.quic.events import ConnectionTerminated, QuicEvent

from common import pki
from common.quic import connect
from common.transport import ConnectionClosed, PeerIdentity
from common.wire.errors import ErrorCode
from tests.common.quic_support import HOST, Accepted, Authority, running_server

ALERT_BAD_CERTIFICATE = 0x100 + 42


@pytest.fixture
def ca(tmp_path: Path) -> Authority:
    return Authority(tmp_path / "ca")


@pytest.fixture
def rogue(tmp_path: Path) -> Authority:
    """Another CA with the very same name."""
    return Authority(tmp_path / "rogue")


class Recorder(QuicConnectionProtocol):
    """A stock aioquic client protocol that remembers how its connection ended."""

    terminated: ConnectionTerminated | None = None

    def quic_event_received(self, event: QuicEvent) -> None:
        if isinstance(event, ConnectionTerminated):
            self.terminated = event


async def stock_client_closed_with(port: int, configuration: QuicConfiguration) -> int:
    """Connect with aioquic's own client; return the close code the server sent."""
    async with aioquic_connect(
        HOST, port, configuration=configuration, create_protocol=Recorder
    ) as client:
        assert isinstance(client, Recorder)
        await asyncio.wait_for(client.wait_closed(), 5)
        assert client.terminated is not None
        return client.terminated.error_code


def stock_configuration(ca: Authority, alpn: str = "kokoa/1") -> QuicConfiguration:
    configuration = QuicConfiguration(alpn_protocols=[alpn], is_client=True)
    configuration.verify_mode = ssl.CERT_NONE
    configuration.load_verify_locations(cafile=str(ca.directory / "ca.pem"))
    return configuration


async def refused(port: int, tls: pki.TlsFiles, server_name: str = HOST) -> ConnectionClosed:
    with pytest.raises(ConnectionClosed) as closed:
        await connect(HOST, port, tls, server_name=server_name)
    return closed.value


async def test_agent_of_our_ca_gets_in(ca: Authority) -> None:
    accepted = Accepted()
    async with running_server(ca.issue("ingress", "in-1"), accepted) as server:
        conn = await connect(HOST, server.port, ca.issue("agent", "a1"), server_name=HOST)
        assert (await accepted.next()).peer.name == "a1"
        conn.close()
        await conn.wait_closed()


async def test_agent_of_another_ca_is_refused(ca: Authority, rogue: Authority) -> None:
    accepted = Accepted()
    async with running_server(ca.issue("ingress", "in-1"), accepted) as server:
        closed = await refused(server.port, rogue.issue("agent", "a1", trust=ca))
        assert (closed.code, closed.by_peer) == (ErrorCode.UNAUTHORIZED, True)
        assert closed.reason == "unauthorized"  # no detail for the peer
        assert accepted.count == 0 and not server.connections


async def test_agent_with_an_ingress_certificate_is_refused(ca: Authority) -> None:
    accepted = Accepted()
    async with running_server(ca.issue("ingress", "in-1"), accepted) as server:
        closed = await refused(server.port, ca.issue("ingress", "in-2"))
        assert (closed.code, closed.by_peer) == (ErrorCode.UNAUTHORIZED, True)
        assert accepted.count == 0


async def test_client_without_certificate_is_refused(ca: Authority) -> None:
    accepted = Accepted()
    async with running_server(ca.issue("ingress", "in-1"), accepted) as server:
        code = await stock_client_closed_with(server.port, stock_configuration(ca))
        assert code == ErrorCode.UNAUTHORIZED
        assert accepted.count == 0


async def test_client_with_another_alpn_is_refused(ca: Authority) -> None:
    accepted = Accepted()
    async with running_server(ca.issue("ingress", "in-1"), accepted) as server:
        configuration = stock_configuration(ca, alpn="h3")
        agent = ca.issue("agent", "a1")
        configuration.load_cert_chain(agent.cert, agent.key)
        with pytest.raises(ConnectionError):  # TLS no_application_protocol
            await stock_client_closed_with(server.port, configuration)
        assert accepted.count == 0


async def test_revoked_agent_is_refused(ca: Authority) -> None:
    revoked: list[PeerIdentity] = []

    def is_revoked(identity: PeerIdentity) -> bool:
        revoked.append(identity)
        return identity.name == "stolen"

    accepted = Accepted()
    async with running_server(ca.issue("ingress", "in-1"), accepted, is_revoked=is_revoked) as s:
        closed = await refused(s.port, ca.issue("agent", "stolen"))
        assert (closed.code, closed.reason, closed.by_peer) == (ErrorCode.REVOKED, "revoked", True)
        assert [r.name for r in revoked] == ["stolen"] and accepted.count == 0


async def test_failing_revocation_check_refuses(ca: Authority) -> None:
    def is_revoked(identity: PeerIdentity) -> bool:
        raise RuntimeError("denylist unavailable")

    accepted = Accepted()
    async with running_server(ca.issue("ingress", "in-1"), accepted, is_revoked=is_revoked) as s:
        closed = await refused(s.port, ca.issue("agent", "a1"))
        assert closed.code == ErrorCode.REVOKED and accepted.count == 0


async def test_server_of_another_ca_is_refused_in_the_handshake(
    ca: Authority, rogue: Authority
) -> None:
    accepted = Accepted()
    async with running_server(rogue.issue("ingress", "in-1"), accepted) as server:
        closed = await refused(server.port, ca.issue("agent", "a1"))
        assert (closed.code, closed.by_peer) == (ALERT_BAD_CERTIFICATE, False)
        assert "transport error" in closed.reason
        assert accepted.count == 0


async def test_server_with_an_agent_certificate_is_refused(ca: Authority) -> None:
    async with running_server(ca.issue("agent", "impostor"), Accepted()) as server:
        closed = await refused(server.port, ca.issue("agent", "a1"))
        assert (closed.code, closed.by_peer) == (ErrorCode.UNAUTHORIZED, False)


async def test_server_of_another_name_is_refused(ca: Authority) -> None:
    async with running_server(ca.issue("ingress", "in-1"), Accepted()) as server:
        closed = await refused(server.port, ca.issue("agent", "a1"), server_name="in-9.test")
        assert (closed.code, closed.by_peer) == (ErrorCode.UNAUTHORIZED, False)
