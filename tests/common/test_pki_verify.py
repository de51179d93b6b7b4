"""common.pki.verify_peer: what a peer's chain must be to be accepted, and every refusal."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from aioquic import tls
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from common import pki
from common.transport import PeerIdentity

CA = tuple[ec.EllipticCurvePrivateKey, x509.Certificate]
NOW = datetime.now(UTC)


@pytest.fixture(scope="module")
def ca() -> CA:
    return pki.create_ca("Kokoa CA")


@pytest.fixture(scope="module")
def agent(ca: CA) -> x509.Certificate:
    return pki.issue_certificate(*ca, role="agent", name="web-1", org="acme")[1]


@pytest.fixture(scope="module")
def ingress(ca: CA) -> x509.Certificate:
    return pki.issue_certificate(
        *ca, role="ingress", name="in-1", dns_names=["in-1.test"], ip_addresses=["127.0.0.1"]
    )[1]


def build(
    issuer: CA,
    *,
    uri: str = "urn:kokoa:agent:forged",
    eku: list[x509.ObjectIdentifier] | None = None,
    ca: bool = False,
    not_before: datetime = NOW - timedelta(hours=1),
    not_after: datetime = NOW + timedelta(days=1),
) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
    """A hand-made certificate, for shapes that pki.issue_certificate refuses to make."""
    key = ec.generate_private_key(ec.SECP256R1())
    builder = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "hand-made")]))
        .issuer_name(issuer[1].subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer[0].public_key()), False
        )
        .add_extension(x509.SubjectAlternativeName([x509.UniformResourceIdentifier(uri)]), False)
    )
    if ca:
        builder = builder.add_extension(
            x509.KeyUsage(True, False, False, False, False, True, True, False, False), True
        )
    if eku is not None:
        builder = builder.add_extension(x509.ExtendedKeyUsage(eku), False)
    return key, builder.sign(issuer[0], hashes.SHA256())


def test_accepts_agent(ca: CA, agent: x509.Certificate) -> None:
    assert pki.verify_peer(agent, [], [ca[1]], role="agent") == PeerIdentity(
        name="web-1", role="agent", serial=agent.serial_number, org="acme"
    )


def test_accepts_ingress_by_its_own_or_a_given_name(ca: CA, ingress: x509.Certificate) -> None:
    expected = PeerIdentity(name="in-1", role="ingress", serial=ingress.serial_number)
    assert pki.verify_peer(ingress, [], [ca[1]], role="ingress") == expected
    for name in ("in-1.test", "127.0.0.1"):
        assert pki.verify_peer(ingress, [], [ca[1]], role="ingress", server_name=name) == expected


def test_accepts_any_of_several_roots(ca: CA, agent: x509.Certificate) -> None:
    other = pki.create_ca("Kokoa CA")[1]
    assert pki.verify_peer(agent, [], [other, ca[1]], role="agent").name == "web-1"


def test_refuses_certificate_from_another_ca(agent: x509.Certificate) -> None:
    other = pki.create_ca("Kokoa CA")[1]  # same name, different key
    with pytest.raises(pki.PkiError, match="agent certificate rejected"):
        pki.verify_peer(agent, [], [other], role="agent")


def test_refuses_self_signed_leaf(ca: CA) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    self_ca: CA = (key, ca[1])  # issuer name of the real CA, signed by a stranger
    _, forged = build(self_ca, eku=[ExtendedKeyUsageOID.CLIENT_AUTH])
    with pytest.raises(pki.PkiError, match="rejected"):
        pki.verify_peer(forged, [], [ca[1]], role="agent")


@pytest.mark.parametrize(
    "now",
    [NOW + timedelta(days=7, minutes=1), NOW - timedelta(minutes=6)],
    ids=["expired", "early"],
)
def test_refuses_outside_validity(ca: CA, agent: x509.Certificate, now: datetime) -> None:
    with pytest.raises(pki.PkiError, match="not valid at validation time"):
        pki.verify_peer(agent, [], [ca[1]], role="agent", now=now)


def test_refuses_certificate_that_expired_a_moment_ago(ca: CA) -> None:
    now = datetime.now(UTC)
    _, old = build(
        ca,
        eku=[ExtendedKeyUsageOID.CLIENT_AUTH],
        not_before=now - timedelta(minutes=2),
        not_after=now - timedelta(seconds=1),
    )
    identity = pki.verify_peer(old, [], [ca[1]], role="agent", now=now - timedelta(minutes=1))
    assert identity.name == "forged"
    with pytest.raises(pki.PkiError, match="not valid at validation time"):
        pki.verify_peer(old, [], [ca[1]], role="agent")


def test_refuses_expired_ca(agent: x509.Certificate) -> None:
    ca = pki.create_ca(days=1)
    _, leaf = pki.issue_certificate(*ca, role="agent", name="a")
    with pytest.raises(pki.PkiError, match="rejected"):
        pki.verify_peer(leaf, [], [ca[1]], role="agent", now=NOW + timedelta(days=1, hours=1))


def test_refuses_wrong_role(ca: CA, agent: x509.Certificate, ingress: x509.Certificate) -> None:
    with pytest.raises(pki.PkiError, match="required EKU not found"):
        pki.verify_peer(ingress, [], [ca[1]], role="agent")
    with pytest.raises(pki.PkiError, match="no DNS name or IP address"):
        pki.verify_peer(agent, [], [ca[1]], role="ingress", server_name=None)
    with pytest.raises(pki.PkiError, match="rejected"):
        pki.verify_peer(agent, [], [ca[1]], role="ingress", server_name="in-1.test")


def test_refuses_uri_role_that_contradicts_eku(ca: CA) -> None:
    _, cert = build(ca, uri="urn:kokoa:ingress:x", eku=[ExtendedKeyUsageOID.CLIENT_AUTH])
    with pytest.raises(pki.PkiError, match="is for ingress 'x', expected agent"):
        pki.verify_peer(cert, [], [ca[1]], role="agent")


def test_refuses_leaf_without_eku(ca: CA) -> None:
    """RFC 5280 reads a missing EKU as "any usage"; we require the role's EKU explicitly."""
    _, cert = build(ca, eku=None)
    with pytest.raises(pki.PkiError, match="lacks the extended key usage of an agent"):
        pki.verify_peer(cert, [], [ca[1]], role="agent")


def test_refuses_leaf_without_kokoa_identity(ca: CA) -> None:
    _, cert = build(ca, uri="https://web-1.test/", eku=[ExtendedKeyUsageOID.CLIENT_AUTH])
    with pytest.raises(pki.PkiError, match="exactly one kokoa URI SAN, found 0"):
        pki.verify_peer(cert, [], [ca[1]], role="agent")


def test_refuses_ca_certificate_as_leaf(ca: CA) -> None:
    with pytest.raises(pki.PkiError, match=r"cA must not be asserted|CA certificate"):
        pki.verify_peer(ca[1], [], [ca[1]], role="agent")
    _, sub_ca = build(ca, ca=True, eku=[ExtendedKeyUsageOID.CLIENT_AUTH])
    with pytest.raises(pki.PkiError, match=r"cA must not be asserted|CA certificate"):
        pki.verify_peer(sub_ca, [], [ca[1]], role="agent")


def test_refuses_intermediate_under_pathlen_0(ca: CA) -> None:
    intermediate = build(ca, ca=True, uri="urn:kokoa:agent:intermediate")
    _, leaf = build(intermediate, eku=[ExtendedKeyUsageOID.CLIENT_AUTH])
    with pytest.raises(pki.PkiError, match="rejected"):
        pki.verify_peer(leaf, [intermediate[1]], [ca[1]], role="agent")


def test_refuses_leaf_issued_by_a_leaf(ca: CA) -> None:
    key, agent = pki.issue_certificate(*ca, role="agent", name="issuer")
    assert key is not None
    _, leaf = build((key, agent), eku=[ExtendedKeyUsageOID.CLIENT_AUTH])
    with pytest.raises(pki.PkiError, match="rejected"):
        pki.verify_peer(leaf, [agent], [ca[1]], role="agent")


@pytest.mark.parametrize("name", ["ä.test", "*.in-1.test", " in-1.test", "in-1.test.", "a" * 300])
def test_refuses_malformed_server_name(ca: CA, ingress: x509.Certificate, name: str) -> None:
    with pytest.raises(pki.PkiError, match="is not a DNS name or IP address"):
        pki.verify_peer(ingress, [], [ca[1]], role="ingress", server_name=name)


def test_server_name_is_case_insensitive_and_must_match(ca: CA, ingress: x509.Certificate) -> None:
    assert pki.verify_peer(ingress, [], [ca[1]], role="ingress", server_name="IN-1.Test")
    for name in ("other.test", "127.0.0.2", "::1"):
        with pytest.raises(pki.PkiError, match="no matching subjectAltName"):
            pki.verify_peer(ingress, [], [ca[1]], role="ingress", server_name=name)


def test_refuses_without_roots(agent: x509.Certificate) -> None:
    with pytest.raises(pki.PkiError, match="no trusted CA"):
        pki.verify_peer(agent, [], [], role="agent")


def test_refuses_unknown_role(ca: CA, agent: x509.Certificate) -> None:
    with pytest.raises(pki.PkiError, match="role must be one of"):
        pki.verify_peer(agent, [], [ca[1]], role="edge")  # type: ignore[arg-type]


def test_ingress_chain_passes_aioquic_openssl_check(ca: CA, ingress: x509.Certificate) -> None:
    """aioquic's client chain check (OpenSSL) agrees with verify_peer when given no name."""
    cadata = ca[1].public_bytes(serialization.Encoding.PEM)
    tls.verify_certificate(ingress, [], server_name=None, cadata=cadata)
    other = pki.create_ca()[1].public_bytes(serialization.Encoding.PEM)
    with pytest.raises(tls.AlertBadCertificate):
        tls.verify_certificate(ingress, [], server_name=None, cadata=other)


def test_aioquic_name_check_cannot_read_kokoa_uri(ca: CA, ingress: x509.Certificate) -> None:
    """Why the agent's QUIC client must check the name with verify_peer(server_name=...).

    aioquic checks the name with service_identity, which parses every URI SAN as
    "scheme:host" and fails on a URN, so it refuses the certificate. If this test starts to
    fail, service_identity learned URNs and docs/pki.md "Verifying peers" can be simplified.
    """
    cadata = ca[1].public_bytes(serialization.Encoding.PEM)
    with pytest.raises(tls.AlertBadCertificate, match="could not be parsed"):
        tls.verify_certificate(ingress, [], server_name="in-1.test", cadata=cadata)
