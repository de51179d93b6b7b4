"""The control plane's certificate authority: created on first start, kept in the database with
its private key encrypted, loaded (and decrypted once) on use.

The key is stored as PKCS#8 `ENCRYPTED PRIVATE KEY` (PBES2: PBKDF2-HMAC-SHA256, AES-256-CBC),
so `openssl pkey` can read it with the passphrase. The passphrase is, in order:
`ca_key_passphrase` from the settings; else one derived from `secret_key` (HKDF-SHA256, so
the session secret itself is never the CA passphrase); else (development mode only, where no
secret is required) a random one kept in `data_dir/ca-key-passphrase`, mode 0600. Production
settings refuse a missing or default secret (control/settings.py), so production never uses
the file.

Several CA rows may be trusted at once (slots "current", "next", "previous": see
control/ca_rotation.py and docs/pki.md, "Rotating the control plane's CA"); only "current"
signs. Every enrollment reads the slots afresh (one small query), so a rotation made through
one replica is seen by the others without a restart.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from common import pki
from control.db.models import CertificateAuthority
from control.settings import InsecureSettingsError, Settings

PASSPHRASE_FILE = "ca-key-passphrase"
HKDF_INFO = b"kokoa control-plane CA key v1"
TRUSTED_SLOTS = ("current", "next", "previous")


class CaError(Exception):
    """The CA cannot be created or loaded (wrong passphrase, unreadable passphrase file…)."""


@dataclass(frozen=True, slots=True)
class Authority:
    """The signing CA and every CA certificate a node or agent should trust."""

    key: ec.EllipticCurvePrivateKey
    certificate: x509.Certificate
    trusted: tuple[x509.Certificate, ...]  # the signing CA first

    @property
    def fingerprint(self) -> str:
        return pki.fingerprint(self.certificate)

    def bundle_pem(self) -> str:
        return "".join(to_pem(cert) for cert in self.trusted)


def to_pem(cert: x509.Certificate) -> str:
    return cert.public_bytes(serialization.Encoding.PEM).decode()


def ca_passphrase(settings: Settings) -> bytes:
    """The passphrase that encrypts the CA key (see the module docstring for the order)."""
    if settings.ca_key_passphrase is not None and settings.ca_key_passphrase.get_secret_value():
        return settings.ca_key_passphrase.get_secret_value().encode()
    if settings.secret_key is not None and settings.secret_key.get_secret_value():
        hkdf = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=HKDF_INFO)
        return hkdf.derive(settings.secret_key.get_secret_value().encode()).hex().encode()
    if settings.mode == "production":
        raise InsecureSettingsError("the CA key needs ca_key_passphrase or secret_key")
    return _passphrase_file(settings.data_dir / PASSPHRASE_FILE)


def _passphrase_file(path: Path) -> bytes:
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        if path.stat().st_mode & 0o077:
            raise CaError(f"{path} is readable by others: chmod 600 it") from None
        return path.read_bytes().strip()
    with os.fdopen(fd, "w") as file:
        file.write(secrets.token_hex(32))
    return path.read_bytes().strip()


def encrypt_key(key: ec.EllipticCurvePrivateKey, passphrase: bytes) -> str:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(passphrase),
    ).decode()


def decrypt_key(pem: str, passphrase: bytes) -> ec.EllipticCurvePrivateKey:
    try:
        key = serialization.load_pem_private_key(pem.encode(), password=passphrase)
    except (ValueError, TypeError):
        raise CaError(
            "the CA key cannot be decrypted: ca_key_passphrase (or the secret_key it is "
            "derived from) is not the one it was stored with (docs/pki.md)"
        ) from None
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise CaError(f"the CA key is a {type(key).__name__}, not an EC key")
    return key


def new_authority_row(
    passphrase: bytes, lifetime: timedelta, now: datetime, *, slot: str
) -> CertificateAuthority:
    """A new CA (key and self-signed certificate) as a row for `slot`."""
    row_id = uuid.uuid4()
    days = max(1, lifetime.days)
    key, cert = pki.create_ca(f"Kokoa control-plane CA {row_id.hex[:8]}", days=days)
    return CertificateAuthority(
        id=row_id,
        slot=slot,
        certificate=to_pem(cert),
        encrypted_key=encrypt_key(key, passphrase),
        fingerprint=pki.fingerprint(cert),
        created_at=now,
        not_after=cert.not_valid_after_utc,
    )


class ControlCA:
    """The CA of one control-plane application (held by its Runtime)."""

    def __init__(
        self,
        settings: Settings,
        sessionmaker: async_sessionmaker[AsyncSession],
        clock: Callable[[], datetime],
    ) -> None:
        self._settings = settings
        self._sessionmaker = sessionmaker
        self._clock = clock
        self._passphrase: bytes | None = None
        self._keys: dict[str, ec.EllipticCurvePrivateKey] = {}
        self._certs: dict[str, x509.Certificate] = {}
        self._lock = asyncio.Lock()

    async def authority(self) -> Authority:
        """The current CA, creating it if there is none yet (in its own transaction).

        Raises:
            CaError: the stored key cannot be decrypted with the configured passphrase.
        """
        rows = await self._trusted_rows()
        if not any(row.slot == "current" for row in rows):
            async with self._lock:
                await self._create()
            rows = await self._trusted_rows()
        return self._authority(rows)

    async def _trusted_rows(self) -> list[CertificateAuthority]:
        async with self._sessionmaker() as db, db.begin():
            query = select(CertificateAuthority).where(CertificateAuthority.slot.in_(TRUSTED_SLOTS))
            return list((await db.execute(query)).scalars())

    async def _create(self) -> None:
        row = new_authority_row(
            self.passphrase(), self._settings.ca_lifetime, self._clock(), slot="current"
        )
        try:
            async with self._sessionmaker() as db, db.begin():
                if await _has_current(db):
                    return  # another request (or replica) made it first
                db.add(row)
        except IntegrityError:
            return  # another replica made it between our check and our insert

    def passphrase(self) -> bytes:
        if self._passphrase is None:
            self._passphrase = ca_passphrase(self._settings)
        return self._passphrase

    def _authority(self, rows: list[CertificateAuthority]) -> Authority:
        rows.sort(key=lambda row: TRUSTED_SLOTS.index(row.slot or "previous"))
        current = rows[0]
        if current.slot != "current":
            raise CaError("no current CA")
        now = self._clock()
        if current.not_after <= now:
            raise CaError("the current CA has expired: rotate it (docs/pki.md)")
        trusted = tuple(self._cert(row) for row in rows if row.not_after > now)
        return Authority(self._key(current), self._cert(current), trusted)

    def _cert(self, row: CertificateAuthority) -> x509.Certificate:
        cert = self._certs.get(row.fingerprint)
        if cert is None:
            cert = self._certs[row.fingerprint] = x509.load_pem_x509_certificate(
                row.certificate.encode()
            )
        return cert

    def _key(self, row: CertificateAuthority) -> ec.EllipticCurvePrivateKey:
        key = self._keys.get(row.fingerprint)
        if key is None:
            key = self._keys[row.fingerprint] = decrypt_key(row.encrypted_key, self.passphrase())
        return key


async def _has_current(db: AsyncSession) -> bool:
    query = select(CertificateAuthority.id).where(CertificateAuthority.slot == "current")
    return (await db.execute(query)).first() is not None
