"""Kokoa's certificates: a small CA, leaf certificates for agents and ingress nodes, strict
verification of a peer's chain, and the PEM files they live in (docs/pki.md).

Identity is carried in one URI subject alternative name:

- agent: ``urn:kokoa:agent:<id>`` or ``urn:kokoa:org:<org>:agent:<id>``, EKU clientAuth;
- ingress node: ``urn:kokoa:ingress:<name>`` or ``urn:kokoa:org:<org>:ingress:<name>``,
  EKU serverAuth, plus DNS/IP SANs for the address agents dial.

All keys are ECDSA P-256; all signatures ECDSA with SHA-256. Everything cryptographic is done
by the `cryptography` library, chain validation by its `x509.verification` module.
Import from here (`from common import pki`); the submodules are an implementation detail.
"""

from common.pki.files import (
    TlsFiles,
    fingerprint,
    load_certificates,
    load_private_key,
    write_certificate,
    write_key,
)
from common.pki.identity import (
    ROLES,
    PkiError,
    Role,
    identity_from_certificate,
    identity_uri,
    parse_identity_uri,
)
from common.pki.issue import CLOCK_SKEW, create_ca, issue_certificate
from common.pki.verify import verify_peer

__all__ = [
    "CLOCK_SKEW",
    "ROLES",
    "PkiError",
    "Role",
    "TlsFiles",
    "create_ca",
    "fingerprint",
    "identity_from_certificate",
    "identity_uri",
    "issue_certificate",
    "load_certificates",
    "load_private_key",
    "parse_identity_uri",
    "verify_peer",
    "write_certificate",
    "write_key",
]
