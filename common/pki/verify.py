"""Verifying a peer's chain and role, strictly, with `cryptography.x509.verification`."""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence
from datetime import UTC, datetime

from cryptography import x509
from cryptography.x509.verification import (
    PolicyBuilder,
    ServerVerifier,
    Store,
    Subject,
    VerificationError,
)

from common.pki.identity import (
    EKU_BY_ROLE,
    ROLES,
    PkiError,
    Role,
    extension_value,
    identity_from_certificate,
)
from common.transport import PeerIdentity


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
            _server_verifier(builder, subject).verify(leaf, list(intermediates))
    except VerificationError as exc:
        raise PkiError(f"{role} certificate rejected: {exc}") from exc
    return _check_leaf(leaf, role)


def _check_leaf(leaf: x509.Certificate, role: Role) -> PeerIdentity:
    constraints = extension_value(leaf, x509.BasicConstraints)
    if constraints is not None and constraints.ca:
        raise PkiError("a CA certificate cannot be used as a peer certificate")
    usages = extension_value(leaf, x509.ExtendedKeyUsage)
    if usages is None or EKU_BY_ROLE[role] not in usages:
        raise PkiError(f"certificate lacks the extended key usage of an {role}")
    identity = identity_from_certificate(leaf)
    if identity.role != role:
        raise PkiError(f"certificate is for {identity.role} {identity.name!r}, expected {role}")
    return identity


def _subject(server_name: str) -> Subject:
    try:
        return x509.IPAddress(ipaddress.ip_address(server_name))
    except ValueError:
        pass
    try:
        return x509.DNSName(server_name)
    except ValueError:  # not an A-label
        raise PkiError(f"{server_name!r} is not a DNS name or IP address") from None


def _server_verifier(builder: PolicyBuilder, subject: Subject) -> ServerVerifier:
    try:
        return builder.build_server_verifier(subject)
    except ValueError:  # not a valid DNS name
        raise PkiError(f"{subject.value!r} is not a DNS name or IP address") from None


def _own_subject(leaf: x509.Certificate) -> Subject:
    san = extension_value(leaf, x509.SubjectAlternativeName)
    for general_name in san or ():
        if isinstance(general_name, x509.DNSName | x509.IPAddress):
            return general_name
    raise PkiError("certificate has no DNS name or IP address, as an ingress certificate must")
