"""common.pki issuing: CA and leaf extensions, identity URIs, and input errors."""

from __future__ import annotations

import ipaddress
from datetime import UTC, datetime, timedelta

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, ExtensionOID, NameOID
from hypothesis import example, given
from hypothesis import strategies as st

from common import pki
from common.transport import PeerIdentity

CA = tuple[ec.EllipticCurvePrivateKey, x509.Certificate]


@pytest.fixture(scope="module")
def ca() -> CA:
    return pki.create_ca("Test CA", days=30)


def ext(
    cert: x509.Certificate, kind: type[x509.ExtensionType]
) -> x509.Extension[x509.ExtensionType]:
    return cert.extensions.get_extension_for_class(kind)


def test_ca_is_p256_self_signed_pathlen_0(ca: CA) -> None:
    key, cert = ca
    assert isinstance(key.curve, ec.SECP256R1)
    assert cert.subject == cert.issuer
    assert cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "Test CA"
    cert.verify_directly_issued_by(cert)
    bc = ext(cert, x509.BasicConstraints)
    assert bc.critical and bc.value == x509.BasicConstraints(ca=True, path_length=0)
    ku = ext(cert, x509.KeyUsage)
    assert ku.critical
    assert isinstance(ku.value, x509.KeyUsage)
    assert ku.value.key_cert_sign and ku.value.crl_sign
    lifetime = cert.not_valid_after_utc - cert.not_valid_before_utc
    assert lifetime == timedelta(days=30) + pki.CLOCK_SKEW


def test_default_ca_lasts_ten_years() -> None:
    _, cert = pki.create_ca()
    assert cert.not_valid_after_utc - datetime.now(UTC) > timedelta(days=3649)


def test_agent_certificate(ca: CA) -> None:
    key, cert = pki.issue_certificate(*ca, role="agent", name="web-1")
    assert key is not None and isinstance(key.curve, ec.SECP256R1)
    assert cert.public_key() == key.public_key()
    cert.verify_directly_issued_by(ca[1])
    san = ext(cert, x509.SubjectAlternativeName).value
    assert isinstance(san, x509.SubjectAlternativeName)
    assert list(san) == [x509.UniformResourceIdentifier("urn:kokoa:agent:web-1")]
    assert ext(cert, x509.ExtendedKeyUsage).value == x509.ExtendedKeyUsage(
        [ExtendedKeyUsageOID.CLIENT_AUTH]
    )
    assert ext(cert, x509.BasicConstraints).value == x509.BasicConstraints(False, None)
    lifetime = cert.not_valid_after_utc - cert.not_valid_before_utc
    assert lifetime == timedelta(days=7) + pki.CLOCK_SKEW
    assert pki.identity_from_certificate(cert) == PeerIdentity(
        name="web-1", role="agent", serial=cert.serial_number
    )


def test_ingress_certificate_with_org_and_addresses(ca: CA) -> None:
    _, cert = pki.issue_certificate(
        *ca,
        role="ingress",
        name="in-1",
        org="acme",
        dns_names=["Ingress.Example.test"],
        ip_addresses=["127.0.0.1", "::1"],
        days=2,
    )
    san = ext(cert, x509.SubjectAlternativeName).value
    assert isinstance(san, x509.SubjectAlternativeName)
    assert san.get_values_for_type(x509.UniformResourceIdentifier) == [
        "urn:kokoa:org:acme:ingress:in-1"
    ]
    assert san.get_values_for_type(x509.DNSName) == ["ingress.example.test"]
    assert san.get_values_for_type(x509.IPAddress) == [
        ipaddress.ip_address("127.0.0.1"),
        ipaddress.ip_address("::1"),
    ]
    assert ext(cert, x509.ExtendedKeyUsage).value == x509.ExtendedKeyUsage(
        [ExtendedKeyUsageOID.SERVER_AUTH]
    )
    assert cert.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)[0].value == "acme"
    assert pki.identity_from_certificate(cert) == PeerIdentity(
        name="in-1", role="ingress", serial=cert.serial_number, org="acme"
    )


def test_given_public_key_is_certified_without_generating_one(ca: CA) -> None:
    own = ec.generate_private_key(ec.SECP256R1())
    key, cert = pki.issue_certificate(*ca, role="agent", name="a", public_key=own.public_key())
    assert key is None
    assert cert.public_key() == own.public_key()


def test_serials_differ(ca: CA) -> None:
    serials = {
        pki.issue_certificate(*ca, role="agent", name="a")[1].serial_number for _ in range(5)
    }
    assert len(serials) == 5


def test_leaf_never_outlives_its_ca() -> None:
    ca = pki.create_ca(days=3)
    _, cert = pki.issue_certificate(*ca, role="agent", name="a", days=30)
    assert cert.not_valid_after_utc == ca[1].not_valid_after_utc


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"role": "agent", "name": ""}, "name ''"),
        ({"role": "agent", "name": "a:b"}, "name 'a:b'"),
        ({"role": "agent", "name": "-a"}, "name '-a'"),
        ({"role": "agent", "name": "a" * 64}, "1-63 characters"),
        ({"role": "agent", "name": "a", "org": "x y"}, "org 'x y'"),
        ({"role": "edge", "name": "a"}, "role must be one of agent, ingress"),
        ({"role": "agent", "name": "a", "days": 0}, "at least 1 day"),
        ({"role": "agent", "name": "a", "dns_names": ["a.test"]}, "agent certificate carries no"),
        ({"role": "ingress", "name": "a"}, "needs at least one DNS name or IP"),
        ({"role": "ingress", "name": "a", "ip_addresses": ["1.2.3"]}, "'1.2.3' is not an IP"),
        ({"role": "ingress", "name": "a", "dns_names": ["a..b"]}, "'a..b' is not a DNS name"),
        ({"role": "ingress", "name": "a", "dns_names": ["ä.test"]}, "is not a DNS name"),
    ],
)
def test_bad_issue_arguments(ca: CA, kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(pki.PkiError, match=message):
        pki.issue_certificate(*ca, **kwargs)  # type: ignore[arg-type]


def test_refuses_non_p256_public_key(ca: CA) -> None:
    p384 = ec.generate_private_key(ec.SECP384R1()).public_key()
    with pytest.raises(pki.PkiError, match="P-256"):
        pki.issue_certificate(*ca, role="agent", name="a", public_key=p384)
    rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048).public_key()
    with pytest.raises(pki.PkiError, match="P-256"):
        pki.issue_certificate(*ca, role="agent", name="a", public_key=rsa_key)  # type: ignore[arg-type]


def test_refuses_mismatched_ca_key(ca: CA) -> None:
    other_key, _ = pki.create_ca()
    with pytest.raises(pki.PkiError, match="CA key does not match"):
        pki.issue_certificate(other_key, ca[1], role="agent", name="a")


def test_refuses_leaf_as_issuer(ca: CA) -> None:
    leaf_key, leaf = pki.issue_certificate(*ca, role="agent", name="a")
    assert leaf_key is not None
    with pytest.raises(pki.PkiError, match="not a CA"):
        pki.issue_certificate(leaf_key, leaf, role="agent", name="b")


@pytest.mark.parametrize(
    ("uri", "expected"),
    [
        ("urn:kokoa:agent:web-1", ("agent", "web-1", None)),
        ("urn:kokoa:ingress:in.1", ("ingress", "in.1", None)),
        ("urn:kokoa:org:acme:agent:a_b", ("agent", "a_b", "acme")),
        ("urn:kokoa:org:0:ingress:n", ("ingress", "n", "0")),
    ],
)
def test_identity_uri_round_trip(uri: str, expected: tuple[pki.Role, str, str | None]) -> None:
    assert pki.parse_identity_uri(uri) == expected
    assert pki.identity_uri(*expected) == uri


@pytest.mark.parametrize(
    "uri",
    [
        "urn:other:agent:a",
        "urn:kokoa:agent",
        "urn:kokoa:edge:a",
        "urn:kokoa:agent:a:b",
        "urn:kokoa:org:acme:agent",
        "urn:kokoa:team:acme:agent:a",
        "urn:kokoa:agent:",
        "urn:kokoa:agent:a b",
        "URN:KOKOA:agent:a",
        "urn:kokoa:org::agent:a",
    ],
)
def test_malformed_identity_uri(uri: str) -> None:
    with pytest.raises(pki.PkiError):
        pki.parse_identity_uri(uri)


@given(st.text() | st.from_regex(r"urn:kokoa:(org:[a-z0-9:]{0,5}:)?(agent|ingress):.{0,8}"))
@example("urn:kokoa:org:a:agent:b")
def test_parse_identity_uri_parses_or_raises_pki_error(uri: str) -> None:
    """The fuzz invariant: a canonical identity URI, or PkiError; anything else is a bug."""
    try:
        parsed = pki.parse_identity_uri(uri)
    except pki.PkiError:
        return
    assert pki.identity_uri(*parsed) == uri


def test_identity_needs_a_kokoa_uri(ca: CA) -> None:
    with pytest.raises(pki.PkiError, match="no subject alternative name"):
        pki.identity_from_certificate(ca[1])


def _leaf_with_sans(ca: CA, sans: list[x509.GeneralName]) -> x509.Certificate:
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.now(UTC)
    return (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "x")]))
        .issuer_name(ca[1].subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(now + timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName(sans), critical=False)
        .sign(ca[0], hashes.SHA256())
    )


@pytest.mark.parametrize(
    ("uris", "message"),
    [
        ([], "found 0"),
        (["https://example.test/"], "found 0"),
        (["urn:kokoa:agent:a", "urn:kokoa:agent:b"], "found 2"),
        (["urn:kokoa:agent:a:extra"], "is not urn:kokoa"),
    ],
)
def test_identity_needs_exactly_one_valid_kokoa_uri(ca: CA, uris: list[str], message: str) -> None:
    sans: list[x509.GeneralName] = [x509.DNSName("x.test")]
    sans += [x509.UniformResourceIdentifier(u) for u in uris]
    with pytest.raises(pki.PkiError, match=message):
        pki.identity_from_certificate(_leaf_with_sans(ca, sans))


def test_unparseable_extensions_are_a_pki_error(ca: CA) -> None:
    garbage = x509.UnrecognizedExtension(ExtensionOID.SUBJECT_ALTERNATIVE_NAME, b"\x30\x03junk")
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "x")]))
        .issuer_name(ca[1].subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(now + timedelta(days=1))
        .add_extension(garbage, critical=False)
        .sign(ca[0], hashes.SHA256())
    )
    with pytest.raises(pki.PkiError, match="extensions cannot be parsed"):
        pki.identity_from_certificate(cert)
    with pytest.raises(pki.PkiError):
        pki.verify_peer(cert, [], [ca[1]], role="agent")
