"""The enrollment client that nodes and agents run (common/enroll), against a real control
plane over HTTP on loopback: when it enrolls and when it must not, enrolling again with a new
token (after a disable and enable) while the same token is ignored, its state directory (also
after a crash mid-renewal), the renewal loop and how loudly it reports failures."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec
from fastapi import FastAPI

from common import pki
from common.config import ConfigError, Frozen, load
from common.enroll import ControlClient, EnrollError, Renewer, StateDir, ensure_enrolled
from common.enroll.client import check_control_url
from common.enroll.lifetime import renew_after
from common.enroll.proof import make_csr, new_key
from common.enroll.state import Enrollment, _document, token_digest
from common.pki import TlsFiles
from tests.control.enroll_support import Owner, owner, pem
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


def _enrolled(boss: Owner, server: str, root: Path) -> tuple[StateDir, ControlClient]:
    state, client = StateDir(root), ControlClient(server)
    token = boss.token("agent", boss.agent()["id"])["token"]
    ensure_enrolled(state, client, "agent", token)
    return state, client


@pytest.mark.parametrize(
    ("url", "ok"),
    [
        ("https://control.example.com/", True),
        ("http://127.0.0.1:8443", True),
        ("http://[::1]:8443", True),
        ("http://localhost:8443", True),
        ("http://192.0.2.1:8443", False),
        ("http://control.example.com", False),
        ("ftp://control.example.com", False),
        ("https://control.example.com/?x=1", False),
    ],
)
def test_the_control_url_must_be_https_unless_loopback(url: str, ok: bool) -> None:
    if ok:
        assert check_control_url(url) == url.rstrip("/")
    else:
        with pytest.raises(ValueError):
            check_control_url(url)


def test_enrolls_once_then_uses_the_state_directory(
    boss: Owner, server: str, tmp_path: Path
) -> None:
    state, client = StateDir(tmp_path / "state"), ControlClient(server)
    agent = boss.agent()
    first = boss.token("agent", agent["id"])
    enrollment = ensure_enrolled(state, client, "agent", first["token"])
    assert str(enrollment.subject.id) == agent["id"]
    assert (tmp_path / "state").stat().st_mode & 0o777 == 0o700
    assert state.tls.key.stat().st_mode & 0o777 == 0o600
    document = json.loads((tmp_path / "state" / "enrollment.json").read_text())
    assert document["control_url"] == server and document["subject"]["id"] == agent["id"]
    assert "PRIVATE" not in (tmp_path / "state" / "enrollment.json").read_text()

    assert document["token_sha256"] == token_digest(first["token"])
    assert first["token"] not in (tmp_path / "state" / "enrollment.json").read_text()

    down = ControlClient("http://127.0.0.1:9")  # nothing listens: no request may be needed
    assert ensure_enrolled(state, down, "agent", first["token"]) == enrollment  # left in a unit
    assert ensure_enrolled(state, down, "agent", None) == enrollment


async def test_a_new_token_enrolls_again_after_a_disable_and_enable(
    boss: Owner, server: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    state, client = StateDir(tmp_path / "s"), ControlClient(server)
    agent = boss.agent()
    first = boss.token("agent", agent["id"])["token"]
    await asyncio.to_thread(ensure_enrolled, state, client, "agent", first)
    revoked = state.certificate()
    for action in ("disable", "enable"):
        check(boss.client.post(f"{boss.base}/agents/{agent['id']}/{action}"), 200)
    with pytest.raises(EnrollError, match=r"\(401\)"):  # revoked: enable does not undo it
        await Renewer(state, client).renew_once(lambda tls: None)

    second = boss.token("agent", agent["id"])["token"]
    again = await asyncio.to_thread(ensure_enrolled, state, client, "agent", second)
    new = state.certificate()
    assert new.serial_number != revoked.serial_number
    assert new.public_key() == state.key().public_key() != revoked.public_key()
    assert str(again.subject.id) == agent["id"] and again.token_sha256 == token_digest(second)
    renewed = await Renewer(state, client).renew_once(lambda tls: None)  # accepted: not revoked
    assert state.load() == again  # a renewal keeps the token's digest

    down = ControlClient("http://127.0.0.1:9")
    assert ensure_enrolled(state, down, "agent", second) == again  # a restart, same environment
    assert state.certificate() == renewed

    caplog.set_level(logging.INFO, logger="common.enroll.start")
    unreachable = ensure_enrolled(state, down, "agent", "kokoa_ent_other")
    assert unreachable == again and state.certificate() == renewed  # nothing replaced
    refused = await asyncio.to_thread(ensure_enrolled, state, client, "agent", first)  # used
    assert refused.token_sha256 == token_digest(first)  # refused for good: remembered
    assert state.certificate() == renewed
    assert ensure_enrolled(state, down, "agent", first) == refused  # not tried again
    messages = [(r.levelname, r.getMessage()) for r in caplog.records]
    failed = "enrolling again with the new token failed; starting with the stored enrollment"
    assert [m for m in messages if m[1].startswith(failed[:30])] == [
        ("ERROR", failed + " (a token that enrolled this directory before it remembered tokens "
         "is refused too)"),
    ] * 2  # fmt: skip
    assert len(boss.audit("enrollment.failed")) == 1

    state.save_snapshot({"version": "old"})
    other = boss.agent()
    moved = await asyncio.to_thread(
        ensure_enrolled, state, client, "agent", boss.token("agent", other["id"])["token"]
    )
    assert str(moved.subject.id) == other["id"]
    assert not state.snapshot_path.exists()  # the other agent's snapshot is not ours


def test_refuses_to_start_without_what_it_needs(boss: Owner, server: str, tmp_path: Path) -> None:
    client = ControlClient(server)
    with pytest.raises(EnrollError, match="not enrolled yet"):
        ensure_enrolled(StateDir(tmp_path / "empty"), client, "agent", None)
    state, _ = _enrolled(boss, server, tmp_path / "agent")
    with pytest.raises(EnrollError, match="holds the enrollment of an edge agent"):
        ensure_enrolled(state, client, "ingress", None)
    expires = state.certificate().not_valid_after_utc
    with pytest.raises(EnrollError, match="expired and cannot be renewed"):
        ensure_enrolled(state, client, "agent", None, now=expires + timedelta(seconds=1))
    with pytest.raises(EnrollError, match=r"refused \(401\)") as refused:
        ensure_enrolled(StateDir(tmp_path / "other"), client, "agent", "kokoa_ent_nope")
    assert refused.value.permanent and refused.value.status == 401
    with pytest.raises(EnrollError, match="cannot reach") as down:
        ensure_enrolled(StateDir(tmp_path / "x"), ControlClient("http://127.0.0.1:9"), "agent", "t")
    assert not down.value.permanent


async def test_renewal_swaps_the_pair_and_tells_the_process(
    boss: Owner, server: str, tmp_path: Path
) -> None:
    state, client = await asyncio.to_thread(_enrolled, boss, server, tmp_path / "s")
    old = state.certificate()
    told: list[TlsFiles] = []
    new = await Renewer(state, client).renew_once(told.append)
    assert told == [state.tls]
    assert new.serial_number != old.serial_number
    assert state.certificate() == new
    assert new.public_key() == state.key().public_key()
    assert pki.identity_from_certificate(new).name == pki.identity_from_certificate(old).name
    assert not list(state.root.glob("*.next"))


def test_a_crash_mid_renewal_leaves_a_usable_pair(boss: Owner, server: str, tmp_path: Path) -> None:
    state, _ = _enrolled(boss, server, tmp_path / "s")
    tls = state.tls
    new = new_key()
    cert = _certificate_for(new, pki.identity_from_certificate(state.certificate()).name)
    # Crash after the new key was moved in but before the certificate was: finish it.
    pki.write_certificate(tls.cert.with_name("tunnel.crt.next"), cert)
    pki.write_key(tls.key, new)
    assert state.load() is not None
    assert state.certificate() == cert and state.key().public_key() == new.public_key()
    # Crash with only a new key written: dropped, the pair in place stays.
    pki.write_key(tls.key.with_name("tunnel.key.next"), new_key())
    state.load()
    assert state.certificate() == cert and not list(state.root.glob("*.next"))
    # A certificate that fits no key is never moved in.
    pki.write_certificate(tls.cert.with_name("tunnel.crt.next"), _certificate_for(new_key()))
    state.load()
    assert state.certificate() == cert and not list(state.root.glob("*.next"))


def _certificate_for(key: ec.EllipticCurvePrivateKey, name: str = "a") -> x509.Certificate:
    """A certificate for `key` (and subject `name`) from a throwaway CA (the state directory
    does not verify)."""
    ca_key, ca_cert = pki.create_ca("test")
    return pki.issue_certificate(
        ca_key, ca_cert, role="agent", name=name, public_key=key.public_key()
    )[1]


def test_a_crash_while_enrolling_as_another_agent_never_pairs_its_certificate_with_the_old_subject(
    boss: Owner, server: str, tmp_path: Path
) -> None:
    state, client = _enrolled(boss, server, tmp_path / "s")
    before = state.load()
    assert before is not None
    other = boss.agent()
    key = new_key()
    credentials = client.enroll(boss.token("agent", other["id"])["token"], "agent", make_csr(key))
    cert = x509.load_pem_x509_certificate(credentials.certificate.encode())
    moved = Enrollment(server, credentials.subject, "digest")
    tls, path = state.tls, state.root / "enrollment.json"
    old_files = {p: p.read_bytes() for p in (tls.key, tls.cert, path)}

    def crash(*, pending: list[Path], replaced: list[Path]) -> None:
        """The state directory as a crash in `save` leaves it: the old files, new `.next`
        files for `pending`, the new files in place for `replaced`."""
        for p, data in old_files.items():
            p.write_bytes(data)
        new = {
            tls.key: lambda p: pki.write_key(p, key),
            tls.cert: lambda p: pki.write_certificate(p, cert),
        }
        for p in pending + replaced:
            target = p if p in replaced else p.with_name(p.name + ".next")
            if p == path:
                target.write_text(json.dumps(_document(moved)))
            else:
                new[p](target)

    # After the certificate was replaced, before enrollment.json was: finished.
    crash(pending=[path], replaced=[tls.key, tls.cert])
    assert state.load() == moved and state.certificate() == cert
    assert not list(state.root.glob("*.next"))
    # Every .next file written, nothing replaced yet: finished too.
    crash(pending=[path, tls.key, tls.cert], replaced=[])
    assert state.load() == moved and state.key().public_key() == key.public_key()
    # Only the new enrollment.json and key written: dropped, the old agent stays.
    crash(pending=[path, tls.key], replaced=[])
    assert state.load() == before and not list(state.root.glob("*.next"))
    # The new certificate next to the old subject (as a crash of the version that wrote
    # enrollment.json last, with no .next of it, left it): refused, not used as the old agent.
    crash(pending=[], replaced=[tls.key, tls.cert])
    with pytest.raises(
        EnrollError, match=rf"incomplete: enrollment.json names {before.subject.id}"
    ):
        state.load()
    with pytest.raises(EnrollError, match="incomplete"):
        ensure_enrolled(state, client, "agent", None)


def _garbling(subject: dict[str, Any], certificate: str, ca: str) -> FastAPI:
    """A control plane of our own that answers enrollments and renewals with `certificate` and
    `ca` (the client is under test, not the server)."""
    garbling = FastAPI()
    expires = datetime.now(UTC) + timedelta(days=1)
    body = {
        "certificate": certificate,
        "ca_certificates": ca,
        "subject": subject,
        "not_after": expires.isoformat(),
        "renew_after": expires.isoformat(),
    }

    @garbling.post("/api/v1/enrollment", status_code=201)
    @garbling.post("/api/v1/enrollment/renewals", status_code=201)
    async def credentials() -> dict[str, Any]:
        return body

    @garbling.post("/api/v1/enrollment/challenges", status_code=201)
    async def challenge() -> dict[str, str]:
        return {"nonce": "n", "expires_at": expires.isoformat()}

    return garbling


@pytest.mark.parametrize(
    ("certificate", "ca"),
    [
        ("garbage", "leaf"),
        ("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n", "leaf"),
        ("leaf", "garbage"),
        ("leaf", ""),
        ("no SAN", "leaf"),
    ],
)
async def test_an_unreadable_certificate_from_the_control_plane_keeps_the_stored_enrollment(
    boss: Owner,
    server: str,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
    certificate: str,
    ca: str,
) -> None:
    state, _ = await asyncio.to_thread(_enrolled, boss, server, tmp_path / "s")
    stored, cert = state.load(), state.certificate()
    assert stored is not None
    leaf = pem(cert)
    texts = {"leaf": leaf, "no SAN": pem(pki.create_ca("test")[1])}  # no kokoa identity
    subject = stored.subject.model_dump(mode="json")
    caplog.set_level(logging.INFO, logger="common.enroll.start")
    with serve(_garbling(subject, texts.get(certificate, certificate), texts.get(ca, ca))) as bad:
        client = ControlClient(bad)
        again = await asyncio.to_thread(ensure_enrolled, state, client, "agent", "kokoa_ent_new")
        assert again == stored and state.certificate() == cert  # nothing replaced
        [failed] = [r for r in caplog.records if r.levelname == "ERROR"]
        assert failed.getMessage().startswith("enrolling again with the new token failed")
        assert "cannot be read" in failed.__dict__["error"]
        with pytest.raises(EnrollError, match="cannot be read"):  # nothing stored: exit 1
            await asyncio.to_thread(
                ensure_enrolled, StateDir(tmp_path / "new"), client, "agent", "kokoa_ent_new"
            )
        with pytest.raises(EnrollError, match="cannot be read"):  # the renewal loop goes on
            await Renewer(state, client).renew_once(lambda tls: None)
    assert state.load() == stored and state.certificate() == cert
    assert not (tmp_path / "new" / "enrollment.json").exists()
    assert not list(state.root.glob("*.next"))


class StoppedClock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


async def test_renewal_failures_get_louder_as_expiry_nears(
    boss: Owner, server: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    state, _ = await asyncio.to_thread(_enrolled, boss, server, tmp_path / "s")
    cert = state.certificate()
    clock = StoppedClock(renew_after(cert))
    moments = iter(
        [
            renew_after(cert),  # first attempt: due now
            cert.not_valid_after_utc - timedelta(hours=12),  # past 5/6 of 7 days
            cert.not_valid_after_utc + timedelta(seconds=1),  # expired
        ]
    )
    waits: list[float] = []

    async def sleep(seconds: float) -> None:
        waits.append(seconds)
        try:
            clock.now = next(moments)
        except StopIteration:
            raise asyncio.CancelledError from None

    down = ControlClient("http://127.0.0.1:9")  # nothing listens: every renewal fails
    renewer = Renewer(state, down, clock=clock, sleep=sleep)
    caplog.set_level(logging.WARNING, logger="common.enroll.renewal")
    with pytest.raises(asyncio.CancelledError):
        await renewer.run(lambda tls: None)
    levels = [record.levelname for record in caplog.records]
    assert levels == ["WARNING", "ERROR", "CRITICAL"]
    assert waits[0] == 0.0
    assert 0 < waits[1] <= 5.0 and 0 < waits[2] <= 10.0  # backoff, not the renewal schedule
    assert renewer.failures == 3
    assert state.certificate() == cert  # nothing was replaced


def test_the_overlay_must_not_be_contradicted(tmp_path: Path) -> None:
    class Inner(Frozen):
        listen: str
        cert: str = ""

    class Model(Frozen):
        name: str
        inner: Inner

    path = tmp_path / "c.yaml"
    path.write_text("inner: {listen: x}\n")
    overlay = {"name": "id-1", "inner": {"cert": "/state/tunnel.crt"}}
    assert load(path, Model, overlay=overlay) == Model(
        name="id-1", inner=Inner(listen="x", cert="/state/tunnel.crt")
    )
    path.write_text("name: id-1\ninner: {listen: x, cert: /state/tunnel.crt}\n")
    assert load(path, Model, overlay=overlay).name == "id-1"  # repeating it is fine
    path.write_text("name: other\ninner: {listen: x, cert: pki/a.crt}\n")
    with pytest.raises(ConfigError) as error:
        load(path, Model, overlay=overlay)
    assert [field for field, _ in error.value.problems] == ["name", "inner.cert"]
    assert "comes from the enrollment" in str(error.value)
