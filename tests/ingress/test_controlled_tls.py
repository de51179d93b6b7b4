"""An ingress node in control mode serves the HTTPS certificates of the control plane's
snapshots: installed for SNI with the rest of the snapshot, replaced by the next one, a
snapshot with a certificate that does not load refused whole (the old certificate kept), and
a snapshot applied before the listeners start (the stored one) served from the first
handshake."""

from __future__ import annotations

import asyncio
import hashlib
import json
import ssl
import tempfile
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import trustme
import yaml
from cryptography import x509

from common.channel import IngressConfig, Snapshot, SnapshotRejected
from ingress.app import IngressApp
from ingress.public.tls import Issued, load_issued
from ingress.settings import load_settings
from tests.common.quic_support import HOST, Authority

ORG = str(uuid.uuid4())


def pem_pair(ca: trustme.CA, *hosts: str) -> tuple[str, str]:
    cert = ca.issue_cert(*hosts)
    chain = b"".join(blob.bytes() for blob in cert.cert_chain_pems).decode()
    return chain, cert.private_key_pem.bytes().decode()


def received(*certificates: tuple[str, str]) -> Snapshot[IngressConfig]:
    raw: dict[str, Any] = {
        "node": {"id": str(uuid.uuid4()), "name": "ingress-t", "org_id": ORG},
        "services": [{"id": str(uuid.uuid4()), "name": "web", "hosts": ["web.test"]}],
        "revoked": {"serials": [], "identities": []},
        "certificates": [
            {"id": str(uuid.uuid4()), "names": [], "chain": chain, "key": key}
            for chain, key in certificates
        ],
    }
    canonical = json.dumps(raw, sort_keys=True, separators=(",", ":")).encode()
    version = hashlib.sha256(canonical).hexdigest()
    return Snapshot(version, datetime.now(UTC), IngressConfig.model_validate(raw), raw)


def make_node(tmp_path: Path) -> IngressApp:
    """A node whose file lists no HTTPS certificate (control mode allows it)."""
    ca = Authority(tmp_path / "ca")
    ca.issue("ingress", "ingress-t")
    config = tmp_path / "ingress.yaml"
    data = {
        "node": "ingress-t",
        "tunnel": {
            "listen": f"{HOST}:0",
            "cert": "ca/ingress-ingress-t.pem",
            "key": "ca/ingress-ingress-t.key",
            "ca": "ca/ca.pem",
        },
        "https": {"listen": f"{HOST}:0"},
        "admin": None,
        "drain_grace": 1,
    }
    config.write_text(yaml.safe_dump(data))
    return IngressApp(config, load_settings(config, controlled=True))


@pytest.fixture
async def running(tmp_path: Path) -> AsyncIterator[IngressApp]:
    app = make_node(tmp_path)
    async with asyncio.TaskGroup() as group:
        group.create_task(app.run(), name="node")
        async with asyncio.timeout(5):
            while "https" not in app.ports:  # noqa: ASYNC110
                await asyncio.sleep(0.01)
        yield app
        app.stop()


async def served(app: IngressApp, ca: trustme.CA, server_name: str) -> x509.Certificate:
    """The certificate the node presents for `server_name` (verified against `ca`)."""
    context = ssl.create_default_context()
    ca.configure_trust(context)
    _, writer = await asyncio.open_connection(
        HOST, app.ports["https"], ssl=context, server_hostname=server_name
    )
    try:
        der = writer.get_extra_info("ssl_object").getpeercert(binary_form=True)
        return x509.load_der_x509_certificate(der)
    finally:
        writer.close()


def names(cert: x509.Certificate) -> list[str]:
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName)
    return san.value.get_values_for_type(x509.DNSName)


async def test_snapshot_certificates_are_served_replaced_and_a_bad_one_refused(
    running: IngressApp,
) -> None:
    app = running
    ca = trustme.CA()
    first = pem_pair(ca, "web.test")
    await app.apply_snapshot(received(first))
    assert names(await served(app, ca, "web.test")) == ["web.test"]

    other_key = pem_pair(ca, "web.test")[1]
    bad = received(pem_pair(ca, "x.test"), (first[0], other_key))
    with pytest.raises(SnapshotRejected, match=r"certificates\.1 \(.*\): the chain and key do"):
        await app.apply_snapshot(bad)
    with pytest.raises(SnapshotRejected, match=r"certificates\.0 \(.*\): not a PEM certificate"):
        await app.apply_snapshot(received(("garbage", other_key)))
    kept = await served(app, ca, "web.test")
    assert kept == x509.load_pem_x509_certificate(first[0].encode())  # the old one stays

    renewed_ca = trustme.CA()
    renewed = pem_pair(renewed_ca, "web.test", "www.web.test")
    await app.apply_snapshot(received(renewed))
    assert names(await served(app, renewed_ca, "www.web.test")) == ["web.test", "www.web.test"]
    assert app.node.snapshot.certificates[0].chain == renewed[0]


async def test_a_snapshot_applied_before_start_serves_from_the_first_handshake(
    tmp_path: Path,
) -> None:
    app = make_node(tmp_path)
    ca = trustme.CA()
    await app.apply_snapshot(received(pem_pair(ca, "web.test")))  # as restore() does
    async with asyncio.TaskGroup() as group:
        group.create_task(app.run(), name="node")
        async with asyncio.timeout(5):
            while "https" not in app.ports:  # noqa: ASYNC110
                await asyncio.sleep(0.01)
        try:
            assert names(await served(app, ca, "web.test")) == ["web.test"]
        finally:
            app.stop()


async def test_certificates_load_off_the_event_loop(tmp_path: Path) -> None:
    """Loading a snapshot's certificates (~1.5 ms each) leaves the event loop free: a task
    that ticks every millisecond keeps ticking while 40 of them load."""
    app = make_node(tmp_path)
    ca = trustme.CA()
    snapshot = received(*(pem_pair(ca, f"h{i}.test") for i in range(40)))
    ticks = 0

    async def tick() -> None:
        nonlocal ticks
        for _ in range(100_000):  # bounded; cancelled long before
            await asyncio.sleep(0.001)
            ticks += 1

    async with asyncio.TaskGroup() as group:
        ticker = group.create_task(tick(), name="ticker")
        await asyncio.sleep(0.01)
        before = ticks
        await app.apply_snapshot(snapshot)
        during = ticks - before
        ticker.cancel()
    assert during >= 3, during
    assert len(app.node.snapshot.certificates) == 40


async def test_a_reload_while_certificates_load_is_kept(tmp_path: Path) -> None:
    """The file re-read (SIGHUP) while a snapshot's certificates load in the worker thread:
    the snapshot swapped in afterwards is built on the new file, not the one it started on."""
    app = make_node(tmp_path)
    ca = trustme.CA()
    cert = ca.issue_cert("file.test")
    cert.cert_chain_pems[0].write_to_path(str(tmp_path / "file.pem"))
    cert.private_key_pem.write_to_path(str(tmp_path / "file.key"))
    config = tmp_path / "ingress.yaml"
    data = yaml.safe_load(config.read_text())
    data["https"]["certificates"] = [{"cert": "file.pem", "key": "file.key"}]
    data["drain_grace"] = 3
    config.write_text(yaml.safe_dump(data))

    snapshot = received(*(pem_pair(ca, f"h{i}.test") for i in range(40)))
    async with asyncio.TaskGroup() as group:
        loading = group.create_task(app.apply_snapshot(snapshot), name="apply")
        await asyncio.sleep(0)  # now in the worker thread
        assert not loading.done()
        assert app.reload()
    settings = app.node.settings()
    assert settings.drain_grace == 3
    assert [service.name for service in settings.services] == ["web"]
    assert len(app.node.snapshot.certificates) == 40


def test_the_keys_written_to_load_them_are_removed(tmp_path: Path) -> None:
    """`ssl` loads a key only from a file: the snapshot's go through a private temporary
    directory in `scratch` that is gone once they are loaded, or refused."""
    scratch = tmp_path / "state" / "tls-tmp"
    ca = trustme.CA()
    chain, key = pem_pair(ca, "web.test")
    loaded = load_issued([Issued("certificates.0 (a)", chain, key)], scratch=scratch)
    assert len(loaded.entries) == 1
    assert scratch.stat().st_mode & 0o777 == 0o700
    assert list(scratch.iterdir()) == []
    other_key = pem_pair(ca, "web.test")[1]
    with pytest.raises(ssl.SSLError, match="do not load together"):
        load_issued([Issued("certificates.0 (a)", chain, other_key)], scratch=scratch)
    assert list(scratch.iterdir()) == []
    scratch.rmdir()
    scratch.touch()  # not a directory: the load has nowhere to write
    with pytest.raises(OSError):
        load_issued([Issued("certificates.0 (a)", chain, key)], scratch=scratch)


async def test_the_node_writes_keys_in_its_state_directory_not_the_systems_temporary_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A process killed during a load would leave a key behind: in `tls-tmp` of the state
    directory (0700, beside snapshot.json and its same keys), never in /tmp. Nothing is left
    after a load or a refused one."""
    not_a_directory = tmp_path / "system-tmp"
    not_a_directory.touch()
    monkeypatch.setattr(tempfile, "tempdir", str(not_a_directory))  # /tmp unusable
    app = make_node(tmp_path)
    scratch = tmp_path / "ingress.state" / "tls-tmp"
    ca = trustme.CA()
    first = pem_pair(ca, "web.test")
    await app.apply_snapshot(received(first))
    assert len(app.node.snapshot.certificates) == 1
    assert scratch.stat().st_mode & 0o777 == 0o700
    assert list(scratch.iterdir()) == []
    with pytest.raises(SnapshotRejected, match="do not load together"):
        await app.apply_snapshot(received((first[0], pem_pair(ca, "web.test")[1])))
    assert list(scratch.iterdir()) == []
    assert app.node.snapshot.certificates[0].chain == first[0]


async def test_key_files_a_killed_load_left_are_removed_at_start(tmp_path: Path) -> None:
    app = make_node(tmp_path)
    scratch = tmp_path / "ingress.state" / "tls-tmp"
    leftover = scratch / "kokoa-tls-x1y2z3" / "key.pem"
    leftover.parent.mkdir(mode=0o700, parents=True)
    leftover.write_text("-----BEGIN PRIVATE KEY-----\n")
    async with asyncio.TaskGroup() as group:
        group.create_task(app.run(), name="node")
        async with asyncio.timeout(5):
            while "https" not in app.ports:  # noqa: ASYNC110
                await asyncio.sleep(0.01)
        app.stop()
    assert not scratch.exists()
