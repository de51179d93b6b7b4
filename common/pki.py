"""Kokoa's certificates: a small CA, leaf certificates for agents and ingress nodes, and strict
verification of a peer's chain.

Identity is carried in one URI subject alternative name (docs/pki.md):

- agent: ``urn:kokoa:agent:<id>`` or ``urn:kokoa:org:<org>:agent:<id>``, EKU clientAuth;
- ingress node: ``urn:kokoa:ingress:<name>`` or ``urn:kokoa:org:<org>:ingress:<name>``,
  EKU serverAuth, plus DNS/IP SANs for the address agents dial.

All keys are ECDSA P-256; all signatures ECDSA with SHA-256. Everything cryptographic is done
by the `cryptography` library, chain validation by its `x509.verification` module.
"""

from __future__ import annotations

import ipaddress
import os
import re
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Literal, TypeVar

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from cryptography.x509.verification import PolicyBuilder, Store, Subject, VerificationError

from common.transport import PeerIdentity

Role = Literal["agent", "ingress"]
ROLES: tuple[Role, ...] = ("agent", "ingress")
URN_PREFIX = "urn:kokoa:"
NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,62}")
CLOCK_SKEW = timedelta(minutes=5)  # leaves and CAs start this much in the past
_E = TypeVar("_E", bound=x509.ExtensionType)
_EKU = {"agent": ExtendedKeyUsageOID.CLIENT_AUTH, "ingress": ExtendedKeyUsageOID.SERVER_AUTH}


class PkiError(Exception):
    """A certificate or key is missing, malformed, or not acceptable; the message says why."""


@dataclass(frozen=True, slots=True)
class TlsFiles:
    """Paths of a PEM certificate (chain), its PEM private key, and the PEM CA bundle to trust."""

    cert: Path
    key: Path
    ca: Path


# --- identity URIs -------------------------------------------------------------------------


def identity_uri(role: Role, name: str, org: str | None = None) -> str:
    """The URI SAN for `name` in `role` (and `org`); PkiError if a part is not a valid name."""
    if role not in ROLES:
        raise PkiError(f"role must be one of {', '.join(ROLES)}, not {role!r}")
    _check_name("name", name)
    if org is None:
        return f"{URN_PREFIX}{role}:{name}"
    _check_name("org", org)
    return f"{URN_PREFIX}org:{org}:{role}:{name}"


def parse_identity_uri(uri: str) -> tuple[Role, str, str | None]:
    """Split a kokoa identity URI into (role, name, org); PkiError if it is not one."""
    parts = uri.split(":")
    if parts[:2] != ["urn", "kokoa"]:
        raise PkiError(f"{uri!r} is not a kokoa identity URI")
    rest, org = parts[2:], None
    if len(rest) == 4 and rest[0] == "org":
        org, rest = rest[1], rest[2:]
    if len(rest) != 2 or rest[0] not in ROLES:
        raise PkiError(f"{uri!r} is not urn:kokoa:[org:<org>:]agent|ingress:<name>")
    role: Role = "agent" if rest[0] == "agent" else "ingress"
    if identity_uri(role, rest[1], org) != uri:  # validates the name and org
        raise PkiError(f"{uri!r} is not in canonical form")
    return role, rest[1], org


def _check_name(what: str, value: str) -> None:
    if not NAME_RE.fullmatch(value):
        raise PkiError(
            f"{what} {value!r} must be 1-63 characters of letters, digits, '.', '_' or '-', "
            "starting with a letter or digit"
        )


def identity_from_certificate(cert: x509.Certificate) -> PeerIdentity:
    """The identity in `cert`'s kokoa URI SAN (not verified: see `verify_peer`).

    Raises:
        PkiError: no SAN extension, no kokoa URI, several of them, or a malformed one.
    """
    san = _extension(cert, x509.SubjectAlternativeName)
    if san is None:
        raise PkiError("certificate has no subject alternative name")
    uris = [u for u in san.get_values_for_type(x509.UniformResourceIdentifier) if _is_kokoa(u)]
    if len(uris) != 1:
        raise PkiError(f"certificate must carry exactly one kokoa URI SAN, found {len(uris)}")
    role, name, org = parse_identity_uri(uris[0])
    return PeerIdentity(name=name, role=role, serial=cert.serial_number, org=org)


def _is_kokoa(uri: str) -> bool:
    return uri.lower().startswith(URN_PREFIX)


# --- issuing -------------------------------------------------------------------------------


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
) -> tuple[ec.EllipticCurvePrivateKey | None, x509.Certificate]:
    """Issue a leaf certificate for `name` in `role`, signed by the CA.

    A new P-256 key is generated unless `public_key` is given (a CSR's key); the key is returned
    with the certificate, or None when `public_key` was given. The leaf never outlives its CA.

    Raises:
        PkiError: bad role, name, org, address or lifetime; the CA key does not match the CA
            certificate; an agent given DNS/IP names; an ingress given none; a non-P-256 key.
    """
    _check_days(days)
    _check_ca(ca_key, ca_cert)
    uri = identity_uri(role, name, org)
    sans = _address_sans(role, dns_names, ip_addresses)
    key = None
    if public_key is None:
        key = ec.generate_private_key(ec.SECP256R1())
        public_key = key.public_key()
    _check_public_key(public_key)
    now = datetime.now(UTC)
    not_after = min(now + timedelta(days=days), ca_cert.not_valid_after_utc)
    builder = (
        _base_builder(
            _leaf_subject(name, org), ca_cert.subject, public_key, now - CLOCK_SKEW, not_after
        )
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(_key_usage(ca=False), critical=True)
        .add_extension(x509.ExtendedKeyUsage([_EKU[role]]), critical=False)
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
    ski = _extension(ca_cert, x509.SubjectKeyIdentifier)
    if ski is None:
        return x509.AuthorityKeyIdentifier.from_issuer_public_key(_ec_public_key(ca_cert))
    return x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ski)


def _check_days(days: int) -> None:
    if days < 1:
        raise PkiError(f"lifetime must be at least 1 day, not {days}")


def _check_ca(ca_key: ec.EllipticCurvePrivateKey, ca_cert: x509.Certificate) -> None:
    constraints = _extension(ca_cert, x509.BasicConstraints)
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


# --- verifying -----------------------------------------------------------------------------


def verify_peer(
    leaf: x509.Certificate,
    intermediates: Sequence[x509.Certificate],
    roots: Sequence[x509.Certificate],
    *,
    role: Role,
    now: datetime | None = None,
    server_name: str | None = None,
) -> PeerIdentity:
    """Validate `leaf` up to one of `roots` and return its identity if it holds `role`.

    The chain is checked by `cryptography.x509.verification` (signatures, validity windows,
    CA constraints, key usage, EKU clientAuth for an agent or serverAuth for an ingress), then
    the leaf must not be a CA, must carry that EKU explicitly, and its kokoa URI must name
    `role`. For an ingress, `server_name` (the DNS name or IP address dialled) must also be in
    the certificate if given; the agent's QUIC client should pass it, because aioquic's own
    server check cannot be used with these certificates (docs/pki.md, "Verifying peers").

    Raises:
        PkiError: with the reason, on any failure.
    """
    if not roots:
        raise PkiError("no trusted CA certificates")
    if role not in ROLES:
        raise PkiError(f"role must be one of {', '.join(ROLES)}, not {role!r}")
    builder = PolicyBuilder().store(Store(list(roots))).time(now or datetime.now(UTC))
    try:
        if role == "agent":
            builder.build_client_verifier().verify(leaf, list(intermediates))
        else:
            subject = _subject(server_name) if server_name else _own_subject(leaf)
            builder.build_server_verifier(subject).verify(leaf, list(intermediates))
    except VerificationError as exc:
        raise PkiError(f"{role} certificate rejected: {exc}") from exc
    return _check_leaf(leaf, role)


def _check_leaf(leaf: x509.Certificate, role: Role) -> PeerIdentity:
    constraints = _extension(leaf, x509.BasicConstraints)
    if constraints is not None and constraints.ca:
        raise PkiError("a CA certificate cannot be used as a peer certificate")
    usages = _extension(leaf, x509.ExtendedKeyUsage)
    if usages is None or _EKU[role] not in usages:
        raise PkiError(f"certificate lacks the extended key usage of an {role}")
    identity = identity_from_certificate(leaf)
    if identity.role != role:
        raise PkiError(f"certificate is for {identity.role} {identity.name!r}, expected {role}")
    return identity


def _extension(cert: x509.Certificate, kind: type[_E]) -> _E | None:
    try:
        return cert.extensions.get_extension_for_class(kind).value
    except x509.ExtensionNotFound:
        return None


def _subject(server_name: str) -> Subject:
    try:
        return x509.IPAddress(ipaddress.ip_address(server_name))
    except ValueError:
        return x509.DNSName(server_name)


def _own_subject(leaf: x509.Certificate) -> Subject:
    san = _extension(leaf, x509.SubjectAlternativeName)
    for general_name in san or ():
        if isinstance(general_name, x509.DNSName | x509.IPAddress):
            return general_name
    raise PkiError("certificate has no DNS name or IP address, as an ingress certificate must")


# --- files ---------------------------------------------------------------------------------


def load_certificates(path: Path) -> list[x509.Certificate]:
    """All PEM certificates in `path`, in order; PkiError if unreadable or none."""
    data = _read(path)
    try:
        certs = x509.load_pem_x509_certificates(data)
    except ValueError as exc:
        raise PkiError(f"{path}: no valid PEM certificate ({exc})") from None
    return certs


def load_private_key(path: Path) -> ec.EllipticCurvePrivateKey:
    """The unencrypted PEM EC private key in `path`; PkiError if unreadable or another kind."""
    data = _read(path)
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError) as exc:
        raise PkiError(f"{path}: not an unencrypted PEM private key ({exc})") from None
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise PkiError(f"{path}: expected an EC private key, found {type(key).__name__}")
    return key


def write_key(path: Path, key: ec.EllipticCurvePrivateKey) -> None:
    """Write `key` as unencrypted PKCS#8 PEM, mode 0600, atomically (temp file + rename)."""
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    _write_atomic(path, pem, 0o600)


def write_certificate(path: Path, *certs: x509.Certificate) -> None:
    """Write `certs` as concatenated PEM (leaf first), mode 0644, atomically."""
    if not certs:
        raise PkiError("no certificate to write")
    pem = b"".join(cert.public_bytes(serialization.Encoding.PEM) for cert in certs)
    _write_atomic(path, pem, 0o644)


def fingerprint(cert: x509.Certificate) -> str:
    """The SHA-256 fingerprint of `cert`'s DER encoding, lowercase hex."""
    return cert.fingerprint(hashes.SHA256()).hex()


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise PkiError(f"cannot read {path}: {exc.strerror}") from None


def _write_atomic(path: Path, data: bytes, mode: int) -> None:
    try:
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    except OSError as exc:
        raise PkiError(f"cannot write {path}: {exc.strerror}") from None
    try:
        with os.fdopen(fd, "wb") as file:
            os.fchmod(file.fileno(), mode)
            file.write(data)
            file.flush()
            os.fsync(file.fileno())
        os.replace(tmp, path)
    except BaseException as exc:
        Path(tmp).unlink(missing_ok=True)
        if isinstance(exc, OSError):
            raise PkiError(f"cannot write {path}: {exc.strerror}") from None
        raise
