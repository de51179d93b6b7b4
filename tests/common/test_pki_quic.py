"""Kokoa certificates in a real aioquic handshake (sans-IO, no sockets), verified the way
docs/pki.md "Verifying peers" tells the QUIC shell to: both sides call verify_peer after the
handshake, because aioquic checks neither a client certificate nor a URN-carrying server one."""

from __future__ import annotations

import ssl

import pytest
from aioquic.quic.configuration import QuicConfiguration
from aioquic.quic.connection import QuicConnection
from aioquic.quic.events import ConnectionTerminated, HandshakeCompleted, QuicEvent
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from common import pki

CA = tuple[ec.EllipticCurvePrivateKey, x509.Certificate]
Leaf = tuple[ec.EllipticCurvePrivateKey, x509.Certificate]
CLIENT_ADDR, SERVER_ADDR = ("127.0.0.1", 40000), ("127.0.0.1", 4433)


class ServerConnection(QuicConnection):
    """Asks the client for a certificate (aioquic only does so when told)."""

    def _initialize(self, peer_cid: bytes) -> None:
        super()._initialize(peer_cid)
        self.tls._request_client_certificate = True


@pytest.fixture(scope="module")
def ca() -> CA:
    return pki.create_ca()


def leaf(ca: CA, role: pki.Role, name: str) -> Leaf:
    addresses = ["127.0.0.1"] if role == "ingress" else []
    key, cert = pki.issue_certificate(*ca, role=role, name=name, ip_addresses=addresses)
    assert key is not None
    return key, cert


def handshake(
    ca: CA, client_leaf: Leaf | None, server_leaf: Leaf, *, client_checks_name: bool = False
) -> tuple[QuicConnection, QuicConnection, list[QuicEvent]]:
    client_config = QuicConfiguration(alpn_protocols=["kokoa/1"], is_client=True)
    if client_leaf is not None:
        client_config.private_key, client_config.certificate = client_leaf
    client_config.cadata = ca[1].public_bytes(serialization.Encoding.PEM)
    if client_checks_name:
        client_config.server_name = "127.0.0.1"
    else:
        client_config.verify_mode = ssl.CERT_NONE
    server_config = QuicConfiguration(alpn_protocols=["kokoa/1"], is_client=False)
    server_config.private_key, server_config.certificate = server_leaf
    client = QuicConnection(configuration=client_config)
    server = ServerConnection(
        configuration=server_config,
        original_destination_connection_id=client.original_destination_connection_id,
    )
    client.connect(SERVER_ADDR, now=0.0)
    for _ in range(6):
        for data, _addr in client.datagrams_to_send(now=0.0):
            server.receive_datagram(data, CLIENT_ADDR, now=0.0)
        for data, _addr in server.datagrams_to_send(now=0.0):
            client.receive_datagram(data, SERVER_ADDR, now=0.0)
    events = list(iter(client.next_event, None))
    return client, server, events


def peer_chain(connection: QuicConnection) -> tuple[x509.Certificate, list[x509.Certificate]]:
    certificate = connection.tls._peer_certificate
    assert certificate is not None, "the peer sent no certificate"
    return certificate, connection.tls._peer_certificate_chain


def test_both_sides_verify_each_other(ca: CA) -> None:
    client, server, events = handshake(ca, leaf(ca, "agent", "web-1"), leaf(ca, "ingress", "in-1"))
    assert any(isinstance(e, HandshakeCompleted) for e in events)
    agent = pki.verify_peer(*peer_chain(server), [ca[1]], role="agent")
    ingress = pki.verify_peer(*peer_chain(client), [ca[1]], role="ingress", server_name="127.0.0.1")
    assert (agent.name, ingress.name) == ("web-1", "in-1")


def test_server_side_refuses_agent_of_another_ca(ca: CA) -> None:
    stranger = pki.create_ca()
    _, server, events = handshake(ca, leaf(stranger, "agent", "web-1"), leaf(ca, "ingress", "i"))
    assert any(isinstance(e, HandshakeCompleted) for e in events)  # aioquic lets it in...
    with pytest.raises(pki.PkiError, match="agent certificate rejected"):
        pki.verify_peer(*peer_chain(server), [ca[1]], role="agent")  # ...verify_peer does not


def test_client_without_certificate_is_let_in_by_aioquic(ca: CA) -> None:
    """RFC 8446 lets a client answer a CertificateRequest with no certificate, and aioquic
    carries on: the ingress must treat a missing peer certificate as a failure."""
    _, server, events = handshake(ca, None, leaf(ca, "ingress", "in-1"))
    assert any(isinstance(e, HandshakeCompleted) for e in events)
    assert server.tls._peer_certificate is None


def test_client_side_refuses_ingress_of_another_ca(ca: CA) -> None:
    stranger = pki.create_ca()
    client, _, _ = handshake(ca, leaf(ca, "agent", "web-1"), leaf(stranger, "ingress", "i"))
    with pytest.raises(pki.PkiError, match="ingress certificate rejected"):
        pki.verify_peer(*peer_chain(client), [ca[1]], role="ingress", server_name="127.0.0.1")


def test_aioquic_client_name_check_refuses_kokoa_ingress(ca: CA) -> None:
    """Why the client must use CERT_NONE + verify_peer (see docs/pki.md)."""
    client, _, events = handshake(
        ca, leaf(ca, "agent", "web-1"), leaf(ca, "ingress", "in-1"), client_checks_name=True
    )
    assert not any(isinstance(e, HandshakeCompleted) for e in events)
    closed = client._close_event  # the ConnectionTerminated event comes after draining
    assert isinstance(closed, ConnectionTerminated)
    assert closed.reason_phrase == "Certificate extensions could not be parsed"
