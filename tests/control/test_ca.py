"""The control plane's CA: made on first start, one per installation even when replicas race,
its key encrypted at rest with a passphrase from the settings (or, in development without a
secret, a 0600 file), and refused loudly with the wrong passphrase."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from sqlalchemy import func, select

from common import pki
from control.ca import PASSPHRASE_FILE, CaError, ca_passphrase, decrypt_key
from control.db.models import CertificateAuthority
from control.main import create_app
from control.runtime import build_runtime
from control.settings import InsecureSettingsError, Settings
from tests.control.helpers import test_settings as make_settings
from tests.control.server import serve


async def _rows(settings: Settings) -> list[CertificateAuthority]:
    runtime = build_runtime(settings)
    try:
        async with runtime.sessionmaker() as db, db.begin():
            return list((await db.execute(select(CertificateAuthority))).scalars())
    finally:
        await runtime.engine.dispose()


async def test_the_ca_is_made_on_first_start_with_its_key_encrypted(settings: Settings) -> None:
    assert await _rows(settings) == []
    app = create_app(settings)
    await asyncio.to_thread(_start_and_stop, app)
    [row] = await _rows(settings)
    assert row.slot == "current"
    assert row.encrypted_key.startswith("-----BEGIN ENCRYPTED PRIVATE KEY-----")
    with pytest.raises(TypeError):  # no passphrase, no key
        serialization.load_pem_private_key(row.encrypted_key.encode(), password=None)
    key = decrypt_key(row.encrypted_key, ca_passphrase(settings))
    cert = x509.load_pem_x509_certificate(row.certificate.encode())
    assert cert.public_key() == key.public_key()
    assert row.fingerprint == pki.fingerprint(cert)
    constraints = cert.extensions.get_extension_for_class(x509.BasicConstraints).value
    assert constraints.ca and constraints.path_length == 0
    assert (cert.not_valid_after_utc - cert.not_valid_before_utc).days >= 3649


def _start_and_stop(app: Any) -> None:
    with serve(app):
        pass


async def test_the_passphrase_comes_from_settings_and_a_wrong_one_is_refused(
    settings: Settings, tmp_path: Path
) -> None:
    first = build_runtime(settings)
    try:
        authority = await first.ca.authority()
    finally:
        await first.engine.dispose()
    same = build_runtime(settings)
    try:
        assert (await same.ca.authority()).fingerprint == authority.fingerprint
    finally:
        await same.engine.dispose()
    other = make_settings(
        settings.effective_database_url, tmp_path, ca_key_passphrase="another-passphrase-" * 3
    )
    wrong = build_runtime(other)
    try:
        with pytest.raises(CaError, match="cannot be decrypted"):
            await wrong.ca.authority()
    finally:
        await wrong.engine.dispose()


async def test_replicas_starting_together_make_one_ca(settings: Settings) -> None:
    runtimes = [build_runtime(settings) for _ in range(4)]
    try:
        authorities = await asyncio.gather(*(rt.ca.authority() for rt in runtimes))
    finally:
        for runtime in runtimes:
            await runtime.engine.dispose()
    assert len({authority.fingerprint for authority in authorities}) == 1
    runtime = build_runtime(settings)
    try:
        async with runtime.sessionmaker() as db, db.begin():
            count = (await db.execute(select(func.count(CertificateAuthority.id)))).scalar()
    finally:
        await runtime.engine.dispose()
    assert count == 1


def test_the_passphrase_is_never_the_session_secret_itself(settings: Settings) -> None:
    assert settings.secret_key is not None
    derived = ca_passphrase(settings)
    assert derived != settings.secret_key.get_secret_value().encode()
    assert len(derived) == 64
    chosen = make_settings(
        settings.effective_database_url, settings.data_dir, ca_key_passphrase="x" * 40
    )
    assert ca_passphrase(chosen) == b"x" * 40


def test_production_refuses_a_weak_ca_passphrase(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="ca_key_passphrase"):
        make_settings("sqlite+aiosqlite:///:memory:", tmp_path, ca_key_passphrase="changeme")
    production = Settings.model_construct(mode="production", secret_key=None)
    with pytest.raises(InsecureSettingsError):
        ca_passphrase(production)


def test_development_without_a_secret_keeps_the_passphrase_in_a_0600_file(tmp_path: Path) -> None:
    settings = Settings(mode="development", data_dir=tmp_path / "data")
    first = ca_passphrase(settings)
    path = tmp_path / "data" / PASSPHRASE_FILE
    assert path.stat().st_mode & 0o777 == 0o600
    assert ca_passphrase(settings) == first  # survives a restart
    path.chmod(0o644)
    with pytest.raises(CaError, match="chmod 600"):
        ca_passphrase(settings)
