"""Public (HTTPS) certificates: what an upload must be, how its key is kept, and which
certificate serves which host name (`covers`, `serves`). Pure functions: no database, no clock
of their own.

`inspect(chain, private_key, now)` checks an upload and names the field of the first problem
(`CertificateRejected(field, reason)`), in this order:

1. `chain`: PEM `CERTIFICATE` blocks only, 1 to `MAX_CHAIN` of them, each parsing;
2. `private_key`: one unencrypted PEM private key of an accepted type — RSA of 2048 to 8192
   bits, EC on P-256 or P-384, or Ed25519;
3. the key belongs to the first certificate (the server's); a key that matches a later one
   means the chain is out of order;
4. order: each certificate is issued by the next one (names, and the signature verifies);
5. the server's certificate names at least one DNS name (subject alternative names), each a
   host name or a wildcard of one whole leftmost label (`*.example.com`);
6. no certificate of the chain has expired. One not yet valid is accepted (a renewal staged
   ahead of time); the snapshot builder prefers a certificate that is valid now.

The key is stored as PKCS#8 `ENCRYPTED PRIVATE KEY` (PBES2: PBKDF2-HMAC-SHA256, AES-256-CBC)
under the passphrase of the control plane's CA key (control/ca.py), so `openssl pkey` reads it
with that passphrase and `kokoa control ca rekey` re-encrypts it with the CA's keys.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.hazmat.primitives.asymmetric.types import PrivateKeyTypes

MAX_CHAIN = 10  # certificates in one chain
RSA_BITS = (2048, 8192)
EC_CURVES = {"secp256r1": "ec-p256", "secp384r1": "ec-p384"}
_BLOCK = re.compile(
    r"-----BEGIN ([A-Z0-9 ]+)-----\r?\n(.*?)-----END \1-----", re.DOTALL
)  # a PEM block and its label
_LABEL = re.compile(r"[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?")
_PEM = serialization.Encoding.PEM


class CertificateRejected(Exception):
    """An upload that cannot be used: which field, and why (for people)."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}")
        self.field = field
        self.reason = reason


@dataclass(frozen=True, slots=True)
class Inspected:
    """An accepted upload: the chain as clean PEM, the key, and what the API shows."""

    chain: str  # PEM of each certificate, server's first; nothing else
    key: PrivateKeyTypes
    key_type: str  # "rsa-2048", "ec-p256", "ed25519", …
    names: tuple[str, ...]  # DNS names of the server's certificate, lowercase, sorted
    subject: str
    issuer: str
    serial: str  # lowercase hex
    fingerprint: str  # SHA-256 of the server's certificate (DER), lowercase hex
    not_before: datetime
    not_after: datetime


def inspect(chain: str, private_key: str, now: datetime) -> Inspected:
    """Check an upload (see the module docstring).

    Raises:
        CertificateRejected: the first problem, with the field it is in.
    """
    certs = _certificates(chain)
    key = _private_key(private_key)
    try:
        return _inspected(certs, key, now)
    except (ValueError, TypeError, UnsupportedAlgorithm) as exc:  # parsed lazily: a bad field
        raise CertificateRejected("chain", f"a certificate cannot be read: {exc}") from None


def _inspected(certs: list[x509.Certificate], key: PrivateKeyTypes, now: datetime) -> Inspected:
    leaf = certs[0]
    _check_key_matches(key, certs)
    _check_order(certs)
    names = _names(leaf)
    for index, cert in enumerate(certs):
        if cert.not_valid_after_utc <= now:
            which = "the server's certificate" if index == 0 else f"certificate {index + 1}"
            when = cert.not_valid_after_utc.isoformat()
            raise CertificateRejected("chain", f"{which} ({_cn(cert)}) expired at {when}")
    return Inspected(
        chain="".join(cert.public_bytes(_PEM).decode() for cert in certs),
        key=key,
        key_type=key_type(key),
        names=names,
        subject=leaf.subject.rfc4514_string(),
        issuer=leaf.issuer.rfc4514_string(),
        serial=f"{leaf.serial_number:x}",
        fingerprint=leaf.fingerprint(hashes.SHA256()).hex(),
        not_before=leaf.not_valid_before_utc,
        not_after=leaf.not_valid_after_utc,
    )


def _blocks(field: str, text: str) -> list[tuple[str, str]]:
    """The (label, body) of each PEM block; a block that is not closed is refused."""
    blocks: list[tuple[str, str]] = _BLOCK.findall(text)
    if text.count("-----BEGIN ") != len(blocks):
        raise CertificateRejected(field, "a PEM block is not closed by its -----END line")
    return blocks


def _certificates(chain: str) -> list[x509.Certificate]:
    blocks = _blocks("chain", chain)
    if not blocks:
        raise CertificateRejected("chain", "no PEM certificate (-----BEGIN CERTIFICATE-----)")
    others = sorted({label for label, _ in blocks if label != "CERTIFICATE"})
    if others:
        hint = "; the key goes in private_key" if any("KEY" in o for o in others) else ""
        raise CertificateRejected("chain", f"holds a {others[0]} block{hint}")
    if len(blocks) > MAX_CHAIN:
        raise CertificateRejected("chain", f"{len(blocks)} certificates, at most {MAX_CHAIN}")
    certs = []
    for index, match in enumerate(_BLOCK.finditer(chain)):
        try:
            certs.append(x509.load_pem_x509_certificate(match.group(0).encode()))
        except ValueError:
            raise CertificateRejected(
                "chain", f"certificate {index + 1} is not a valid X.509 certificate"
            ) from None
    return certs


def _private_key(text: str) -> PrivateKeyTypes:
    blocks = _blocks("private_key", text)
    if len(blocks) != 1 or "PRIVATE KEY" not in blocks[0][0]:
        raise CertificateRejected("private_key", "want exactly one PEM private key block")
    if blocks[0][0] == "ENCRYPTED PRIVATE KEY" or "ENCRYPTED" in blocks[0][1][:100]:
        raise CertificateRejected(
            "private_key", "encrypted keys are not accepted: decrypt it first (openssl pkey)"
        )
    block = _BLOCK.search(text)
    assert block is not None  # _blocks found it
    try:
        key = serialization.load_pem_private_key(block.group(0).encode(), password=None)
    except TypeError:  # it wanted a password after all
        raise CertificateRejected("private_key", "encrypted keys are not accepted") from None
    except (ValueError, UnsupportedAlgorithm):
        raise CertificateRejected("private_key", "not a valid PEM private key") from None
    key_type(key)  # refuses the types we do not serve
    return key


def key_type(key: PrivateKeyTypes) -> str:
    """ "rsa-<bits>", "ec-p256", "ec-p384" or "ed25519".

    Raises:
        CertificateRejected: any other type, curve or size.
    """
    if isinstance(key, rsa.RSAPrivateKey):
        low, high = RSA_BITS
        if not low <= key.key_size <= high:
            raise CertificateRejected(
                "private_key", f"RSA keys of {low}-{high} bits only, not {key.key_size}"
            )
        return f"rsa-{key.key_size}"
    if isinstance(key, ec.EllipticCurvePrivateKey):
        found = EC_CURVES.get(key.curve.name)
        if found is None:
            raise CertificateRejected(
                "private_key", f"EC keys on P-256 or P-384 only, not {key.curve.name}"
            )
        return found
    if isinstance(key, ed25519.Ed25519PrivateKey):
        return "ed25519"
    kind = type(key).__name__.removeprefix("_").replace("PrivateKey", "")
    raise CertificateRejected(
        "private_key", f"{kind} keys are not accepted: use RSA, EC (P-256, P-384) or Ed25519"
    )


def _spki(public: object) -> bytes:
    assert hasattr(public, "public_bytes")
    der: bytes = public.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return der


def _check_key_matches(key: PrivateKeyTypes, certs: Sequence[x509.Certificate]) -> None:
    mine = _spki(key.public_key())
    for index, cert in enumerate(certs):
        if _spki(cert.public_key()) == mine:
            if index == 0:
                return
            raise CertificateRejected(
                "chain",
                f"the key belongs to certificate {index + 1} ({_cn(cert)}): "
                "put the server's certificate first, then each issuer in order",
            )
    raise CertificateRejected(
        "private_key", f"does not match the server's certificate ({_cn(certs[0])})"
    )


def _check_order(certs: Sequence[x509.Certificate]) -> None:
    for index, (cert, issuer) in enumerate(itertools.pairwise(certs)):
        try:
            cert.verify_directly_issued_by(issuer)
        except (ValueError, TypeError, InvalidSignature, UnsupportedAlgorithm):
            raise CertificateRejected(
                "chain",
                f"certificate {index + 2} ({_cn(issuer)}) did not issue certificate "
                f"{index + 1} ({_cn(cert)}): list the server's certificate first, then each "
                "issuer in order",
            ) from None


def _names(leaf: x509.Certificate) -> tuple[str, ...]:
    try:
        san = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName)
    except x509.ExtensionNotFound:
        raise CertificateRejected(
            "chain", "the server's certificate has no subject alternative names"
        ) from None
    names = {name.lower().rstrip(".") for name in san.value.get_values_for_type(x509.DNSName)}
    if not names:
        raise CertificateRejected("chain", "the server's certificate names no DNS name")
    for name in sorted(names):
        if not is_dns_name(name.removeprefix("*.")):
            raise CertificateRejected(
                "chain", f"the server's certificate names {name!r}, which is not a host name"
            )
    return tuple(sorted(names))


def is_dns_name(name: str) -> bool:
    return 0 < len(name) <= 253 and all(_LABEL.fullmatch(label) for label in name.split("."))


def _cn(cert: x509.Certificate) -> str:
    found = cert.subject.get_attributes_for_oid(x509.NameOID.COMMON_NAME)
    value = found[0].value if found else cert.subject.rfc4514_string()
    text = value.decode(errors="replace") if isinstance(value, bytes) else value
    return text[:100] or "no subject"


# ---- the key at rest ------------------------------------------------------------------------


class KeyUnreadable(Exception):
    """A stored key does not decrypt with the configured passphrase."""


def seal(key: PrivateKeyTypes, passphrase: bytes) -> str:
    """`key` as PKCS#8 ENCRYPTED PRIVATE KEY PEM under `passphrase`."""
    return key.private_bytes(
        _PEM, serialization.PrivateFormat.PKCS8, serialization.BestAvailableEncryption(passphrase)
    ).decode()


def unseal(sealed: str, passphrase: bytes) -> str:
    """The unencrypted PKCS#8 PEM of a key `seal` made.

    Raises:
        KeyUnreadable: wrong passphrase (or not a key).
    """
    try:
        key = serialization.load_pem_private_key(sealed.encode(), password=passphrase)
    except (ValueError, TypeError, UnsupportedAlgorithm):
        raise KeyUnreadable(
            "a public certificate's key cannot be decrypted: ca_key_passphrase (or the "
            "secret_key it is derived from) is not the one it was stored with (docs/pki.md)"
        ) from None
    return key.private_bytes(
        _PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()


def reseal(sealed: str, old: bytes, new: bytes) -> str:
    """A sealed key re-encrypted from passphrase `old` to `new`.

    Raises:
        KeyUnreadable: it does not decrypt with `old`.
    """
    plain = unseal(sealed, old)
    return seal(serialization.load_pem_private_key(plain.encode(), password=None), new)


# ---- which certificate for which host -------------------------------------------------------


def covers(name: str, host: str) -> bool:
    """Whether certificate name `name` covers host name `host`: the same name, or a wildcard
    for exactly one label (`*.example.com` covers `a.example.com`, not `example.com` nor
    `a.b.example.com`). A wildcard host (a service on `*.example.com`) is covered only by the
    same wildcard."""
    if name == host:
        return True
    if not name.startswith("*.") or host.startswith("*."):
        return False
    label, dot, parent = host.partition(".")
    return bool(label and dot) and parent == name[2:]


def serves(name: str, host: str) -> bool:
    """Whether certificate name `name` covers a host name that a service on `host` receives,
    as the ingress routes (ingress/routing.py): an exact host as `covers` says; a wildcard host
    `*.example.com` receives every name below example.com (`a.example.com`, `a.b.example.com`),
    so any certificate name below it serves it (`a.example.com`, `*.example.com`,
    `*.b.example.com`), never `example.com` itself."""
    if host.startswith("*."):
        return name.endswith(host[1:])
    return covers(name, host)
