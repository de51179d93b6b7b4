"""PEM files: load certificates and keys, write them atomically with safe modes."""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from common.pki.identity import PkiError


@dataclass(frozen=True, slots=True)
class TlsFiles:
    """Paths of a PEM certificate (chain), its PEM private key, and the PEM CA bundle to trust."""

    cert: Path
    key: Path
    ca: Path


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
