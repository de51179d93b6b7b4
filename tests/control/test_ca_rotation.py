"""Rotating the CA with traffic in mind: stage (trusted by everyone who renews), promote (signs;
the old one still trusted and still renewable), retire (gone from the bundle, its certificates
can no longer renew). Against a real server, on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography import x509
from fastapi import FastAPI
from pydantic import SecretStr
from sqlalchemy import select
from typer.testing import CliRunner

from common import pki
from common.enroll.proof import new_key
from control import ca_cli
from control.ca_rotation import RotationError, promote, retire, stage
from control.db.models import AuditEvent
from control.runtime import build_runtime
from control.settings import Settings
from tests.control.conftest import run_in_thread
from tests.control.enroll_support import ENROLL, Owner, enroll_body, owner, renewal_body
from tests.control.helpers import check
from tests.control.server import serve


@pytest.fixture
def server(app: FastAPI) -> Iterator[str]:
    with serve(app) as base_url:
        yield base_url


@pytest.fixture
def boss(server: str) -> Iterator[Owner]:
    found = owner(server)
    yield found
    found.client.close()


def _step(settings: Settings, verb: str) -> str:
    async def run() -> str:
        runtime = build_runtime(settings)
        try:
            async with runtime.sessionmaker() as db:
                if verb == "stage":
                    return await stage(db, settings, runtime.ca.passphrase(), runtime.now())
                if verb == "promote":
                    return await promote(db, runtime.now())
                return await retire(db, runtime.now())
        finally:
            await runtime.engine.dispose()

    return run_in_thread(run())


def _enroll(boss: Owner, server: str) -> tuple[dict[str, Any], Any]:
    key = new_key()
    token = boss.token("agent", boss.agent()["id"])["token"]
    reply = check(httpx.post(server + ENROLL, json=enroll_body(token, "agent", key)), 201)
    return reply, key


def _parts(reply: dict[str, Any]) -> tuple[x509.Certificate, list[str]]:
    cert = x509.load_pem_x509_certificate(reply["certificate"].encode())
    roots = x509.load_pem_x509_certificates(reply["ca_certificates"].encode())
    return cert, [pki.fingerprint(root) for root in roots]


def _renew(server: str, reply: dict[str, Any], key: Any) -> httpx.Response:
    cert = x509.load_pem_x509_certificate(reply["certificate"].encode())
    with httpx.Client(base_url=server) as client:
        return client.post(f"{ENROLL}/renewals", json=renewal_body(client, cert, key))


def test_a_rotation_keeps_every_certificate_renewable(
    settings: Settings, boss: Owner, server: str
) -> None:
    before, before_key = _enroll(boss, server)
    _, [old] = _parts(before)

    staged = _step(settings, "stage")
    during, during_key = _enroll(boss, server)
    cert, bundle = _parts(during)
    assert bundle == [old, staged]  # trusted already, not signing yet
    assert cert.issuer == x509.load_pem_x509_certificate(before["certificate"].encode()).issuer

    assert _step(settings, "promote") == staged
    renewed = check(_renew(server, before, before_key), 201)  # an old-CA certificate renews
    cert, bundle = _parts(renewed)
    assert bundle == [staged, old]
    assert pki.verify_peer(cert, [], x509.load_pem_x509_certificates(
        renewed["ca_certificates"].encode())[:1], role="agent")  # fmt: skip

    assert _step(settings, "retire") == old
    after, _ = _enroll(boss, server)
    assert _parts(after)[1] == [staged]
    refused = _renew(server, during, during_key)  # issued by the retired CA: no longer
    assert refused.status_code == 401
    assert "not acceptable" in refused.json()["detail"]


def test_steps_out_of_order_are_refused(settings: Settings, app: FastAPI) -> None:
    with serve(app):  # the first start makes the current CA
        pass
    with pytest.raises(RotationError, match="no CA is staged"):
        _step(settings, "promote")
    with pytest.raises(RotationError, match="no previous CA"):
        _step(settings, "retire")
    _step(settings, "stage")
    with pytest.raises(RotationError, match="already staged"):
        _step(settings, "stage")


def test_the_cli_shows_and_rotates(settings: Settings, tmp_path: Path) -> None:
    assert settings.secret_key is not None
    env = {
        "KOKOA_SECRET_KEY": settings.secret_key.get_secret_value(),
        "KOKOA_DATABASE_URL": settings.effective_database_url,
        "KOKOA_PUBLIC_URL": settings.public_url,
        "KOKOA_DATA_DIR": str(tmp_path),
    }
    runner = CliRunner()
    shown = runner.invoke(ca_cli.app, ["show"], env=env)
    assert shown.exit_code == 0, shown.output
    assert shown.output.startswith("current ")
    assert runner.invoke(ca_cli.app, ["promote"], env=env).exit_code == 1
    staged = runner.invoke(ca_cli.app, ["stage"], env=env)
    assert staged.exit_code == 0 and "staged" in staged.output
    promoted = runner.invoke(ca_cli.app, ["promote"], env=env)
    assert promoted.exit_code == 0, promoted.output
    lines = runner.invoke(ca_cli.app, ["show"], env=env).output.splitlines()
    assert sorted(line.split()[0] for line in lines) == ["current", "previous"]
    assert runner.invoke(ca_cli.app, ["retire"], env=env).exit_code == 0
    events = run_in_thread(_ca_events(settings))
    assert [action for action, _ in events] == ["ca.stage", "ca.promote", "ca.retire"]
    assert events[0][1] == events[1][1] != events[2][1]  # the staged CA is the promoted one


async def _ca_events(settings: Settings) -> list[tuple[str, str]]:
    runtime = build_runtime(settings)
    try:
        async with runtime.sessionmaker() as db:
            query = (
                select(AuditEvent.action, AuditEvent.target_id, AuditEvent.actor_type)
                .where(AuditEvent.action.startswith("ca."))
                .order_by(AuditEvent.id)
            )
            rows = (await db.execute(query)).all()
    finally:
        await runtime.engine.dispose()
    assert {row.actor_type for row in rows} == {"system"}
    return [(row.action, row.target_id) for row in rows]


async def _public_certificate(settings: Settings, *, store: bool) -> str:
    """Store an organisation's public certificate with its key sealed under the current
    passphrase (`store`), or return the stored key unsealed with the current passphrase."""
    from datetime import UTC, datetime

    from control.db.models import Organisation, PublicCertificate
    from control.services import public_tls
    from tests.control.certificates_support import TestCA

    runtime = build_runtime(settings)
    try:
        async with runtime.sessionmaker() as db, db.begin():
            if not store:
                row = (await db.execute(select(PublicCertificate))).scalar_one()
                return public_tls.unseal(row.encrypted_key, runtime.ca.passphrase())
            issued = TestCA().issue("www.example.com")
            checked = public_tls.inspect(issued.chain, issued.key, datetime.now(UTC))
            org = Organisation(name="Org")
            db.add(org)
            await db.flush()
            db.add(
                PublicCertificate(
                    org_id=org.id,
                    names=list(checked.names),
                    chain=checked.chain,
                    encrypted_key=public_tls.seal(checked.key, runtime.ca.passphrase()),
                    key_type=checked.key_type,
                    subject=checked.subject,
                    issuer=checked.issuer,
                    serial=checked.serial,
                    fingerprint=checked.fingerprint,
                    not_before=checked.not_before,
                    not_after=checked.not_after,
                )
            )
            return issued.key
    finally:
        await runtime.engine.dispose()


def test_the_cli_re_encrypts_the_keys_for_a_new_passphrase(
    settings: Settings, tmp_path: Path
) -> None:
    assert settings.secret_key is not None
    secret = settings.secret_key.get_secret_value()
    env = {
        "KOKOA_SECRET_KEY": secret,
        "KOKOA_DATABASE_URL": settings.effective_database_url,
        "KOKOA_PUBLIC_URL": settings.public_url,
        "KOKOA_DATA_DIR": str(tmp_path),
    }
    runner = CliRunner()
    assert runner.invoke(ca_cli.app, ["show"], env=env).exit_code == 0  # made with secret_key
    key = run_in_thread(_public_certificate(settings, store=True))
    new = env | {"KOKOA_CA_KEY_PASSPHRASE": "a-new-passphrase-for-the-ca-key-0123456789"}
    refused = runner.invoke(ca_cli.app, ["show"], env=new)
    assert refused.exit_code == 1 and "cannot be decrypted" in refused.output
    wrong = runner.invoke(ca_cli.app, ["rekey", "--old-is-secret-key"], env=new, input="nope\n")
    assert wrong.exit_code == 1
    rekeyed = runner.invoke(
        ca_cli.app, ["rekey", "--old-is-secret-key"], env=new, input=secret + "\n"
    )
    assert rekeyed.exit_code == 0
    assert "re-encrypted 1 CA key(s) and 1 public certificate key(s)" in rekeyed.output
    passphrase = SecretStr(new["KOKOA_CA_KEY_PASSPHRASE"])
    now_sealed = settings.model_copy(update={"ca_key_passphrase": passphrase})
    assert run_in_thread(_public_certificate(now_sealed, store=False)) == key
    assert runner.invoke(ca_cli.app, ["show"], env=new).exit_code == 0
    assert runner.invoke(ca_cli.app, ["show"], env=env).exit_code == 1  # the old one no more
    assert [action for action, _ in run_in_thread(_ca_events(settings))] == ["ca.rekey"]
