"""Issuing: a self-signed P-256 CA that signs leaves only, and agent/ingress leaves."""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from common.pki.identity import EKU_BY_ROLE, PkiError, Role, extension_value, identity_uri

CLOCK_SKEW = timedelta(minutes=5)  # leaves and CAs start this much in the past


def create_ca(
    common_name: str = "Kokoa CA", *, days: int = 3650
) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
    """A new self-signed CA (P-256, CA:true pathlen 0, keyCertSign/cRLSign) valid for `days`."""
    _check_days(days)
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    now = datetime.now(UTC)
    builder = (
        _base_builder(name, name, key.public_key(), now - CLOCK_SKEW, now + timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(_key_usage(ca=True), critical=True)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(key.public_key()), critical=False
        )
    )
    return key, builder.sign(key, hashes.SHA256())


def issue_certificate(
    ca_key: ec.EllipticCurvePrivateKey,
    ca_cert: x509.Certificate,
    *,
    role: Role,
    name: str,
    org: str | None = None,
    dns_names: Sequence[str] = (),
    ip_addresses: Sequence[str] = (),
    days: int = 7,
    public_key: ec.EllipticCurvePublicKey | None = None,
    valid_for: timedelta | None = None,
) -> tuple[ec.EllipticCurvePrivateKey | None, x509.Certificate]:
    """Issue a leaf certificate for `name` in `role`, signed by the CA.

    A new P-256 key is generated unless `public_key` is given (a CSR's key); the key is returned
    with the certificate, or None when `public_key` was given. The leaf never outlives its CA.
    `valid_for`, when given, replaces `days` (the control plane's lifetimes are timedeltas,
    and tests use seconds).

    Raises:
        PkiError: bad role, name, org, address or lifetime; the CA key does not match the CA
            certificate; an agent given DNS/IP names; an ingress given none; a non-P-256 key.
    """
    lifetime = _lifetime(days, valid_for)
    _check_ca(ca_key, ca_cert)
    uri = identity_uri(role, name, org)
    sans = _address_sans(role, dns_names, ip_addresses)
    key = None
    if public_key is None:
        key = ec.generate_private_key(ec.SECP256R1())
        public_key = key.public_key()
    _check_public_key(public_key)
    now = datetime.now(UTC)
    not_after = min(now + lifetime, ca_cert.not_valid_after_utc)
    builder = (
        _base_builder(
            _leaf_subject(name, org), ca_cert.subject, public_key, now - CLOCK_SKEW, not_after
        )
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(_key_usage(ca=False), critical=True)
        .add_extension(x509.ExtendedKeyUsage([EKU_BY_ROLE[role]]), critical=False)
        .add_extension(
            x509.SubjectAlternativeName([x509.UniformResourceIdentifier(uri), *sans]),
            critical=False,
        )
        .add_extension(_authority_key_id(ca_cert), critical=False)
    )
    return key, builder.sign(ca_key, hashes.SHA256())


def _base_builder(
    subject: x509.Name,
    issuer: x509.Name,
    public_key: ec.EllipticCurvePublicKey,
    not_before: datetime,
    not_after: datetime,
) -> x509.CertificateBuilder:
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
    )


def _key_usage(*, ca: bool) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=True,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=ca,
        crl_sign=ca,
        encipher_only=False,
        decipher_only=False,
    )


def _leaf_subject(name: str, org: str | None) -> x509.Name:
    attributes = [x509.NameAttribute(NameOID.COMMON_NAME, name)]
    if org is not None:
        attributes.append(x509.NameAttribute(NameOID.ORGANIZATION_NAME, org))
    return x509.Name(attributes)


def _address_sans(
    role: Role, dns_names: Sequence[str], ip_addresses: Sequence[str]
) -> list[x509.GeneralName]:
    sans: list[x509.GeneralName] = [x509.DNSName(_dns_name(d)) for d in dns_names]
    for ip in ip_addresses:
        try:
            sans.append(x509.IPAddress(ipaddress.ip_address(ip)))
        except ValueError:
            raise PkiError(f"{ip!r} is not an IP address") from None
    if role == "agent" and sans:
        raise PkiError("an agent certificate carries no DNS names or IP addresses")
    if role == "ingress" and not sans:
        raise PkiError("an ingress certificate needs at least one DNS name or IP address")
    return sans


def _dns_name(value: str) -> str:
    labels = value.removeprefix("*.").split(".")
    if not all(re.fullmatch(r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?", x) for x in labels):
        raise PkiError(f"{value!r} is not a DNS name")
    return value.lower()


def _authority_key_id(ca_cert: x509.Certificate) -> x509.AuthorityKeyIdentifier:
    ski = extension_value(ca_cert, x509.SubjectKeyIdentifier)
    if ski is None:
        return x509.AuthorityKeyIdentifier.from_issuer_public_key(_ec_public_key(ca_cert))
    return x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ski)


def _check_days(days: int) -> None:
    if days < 1:
        raise PkiError(f"lifetime must be at least 1 day, not {days}")


def _lifetime(days: int, valid_for: timedelta | None) -> timedelta:
    if valid_for is None:
        _check_days(days)
        return timedelta(days=days)
    if valid_for <= timedelta(0):
        raise PkiError(f"lifetime must be positive, not {valid_for}")
    return valid_for


def _check_ca(ca_key: ec.EllipticCurvePrivateKey, ca_cert: x509.Certificate) -> None:
    constraints = extension_value(ca_cert, x509.BasicConstraints)
    if constraints is None or not constraints.ca:
        raise PkiError("the CA certificate is not a CA (no basicConstraints CA:true)")
    if _ec_public_key(ca_cert) != ca_key.public_key():
        raise PkiError("the CA key does not match the CA certificate")


def _ec_public_key(cert: x509.Certificate) -> ec.EllipticCurvePublicKey:
    key = cert.public_key()
    if not isinstance(key, ec.EllipticCurvePublicKey):
        raise PkiError(f"expected an EC key, found {type(key).__name__}")
    return key


def _check_public_key(key: object) -> None:
    if not isinstance(key, ec.EllipticCurvePublicKey) or not isinstance(key.curve, ec.SECP256R1):
        raise PkiError("the public key must be ECDSA P-256")
