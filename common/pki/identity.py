"""Identities in Kokoa certificates: the URI SAN that names an agent or an ingress node.

- agent: ``urn:kokoa:agent:<id>`` or ``urn:kokoa:org:<org>:agent:<id>``, EKU clientAuth;
- ingress node: ``urn:kokoa:ingress:<name>`` or ``urn:kokoa:org:<org>:ingress:<name>``,
  EKU serverAuth.
"""

from __future__ import annotations

import re
from typing import Literal, TypeVar

from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID

from common.transport import PeerIdentity

Role = Literal["agent", "ingress"]
ROLES: tuple[Role, ...] = ("agent", "ingress")
EKU_BY_ROLE = {"agent": ExtendedKeyUsageOID.CLIENT_AUTH, "ingress": ExtendedKeyUsageOID.SERVER_AUTH}
URN_PREFIX = "urn:kokoa:"
NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,62}")
_E = TypeVar("_E", bound=x509.ExtensionType)


class PkiError(Exception):
    """A certificate or key is missing, malformed, or not acceptable; the message says why."""


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
    san = extension_value(cert, x509.SubjectAlternativeName)
    if san is None:
        raise PkiError("certificate has no subject alternative name")
    uris = [u for u in san.get_values_for_type(x509.UniformResourceIdentifier) if _is_kokoa(u)]
    if len(uris) != 1:
        raise PkiError(f"certificate must carry exactly one kokoa URI SAN, found {len(uris)}")
    role, name, org = parse_identity_uri(uris[0])
    return PeerIdentity(name=name, role=role, serial=cert.serial_number, org=org)


def _is_kokoa(uri: str) -> bool:
    return uri.lower().startswith(URN_PREFIX)


def extension_value(cert: x509.Certificate, kind: type[_E]) -> _E | None:
    """The value of `cert`'s extension of type `kind`, or None if it has none."""
    try:
        return cert.extensions.get_extension_for_class(kind).value
    except x509.ExtensionNotFound:
        return None
    except ValueError as exc:  # extensions are parsed on first access
        raise PkiError(f"certificate extensions cannot be parsed: {exc}") from None
