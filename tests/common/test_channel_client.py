"""The control channel's client against a real control plane (HTTPS on 127.0.0.1, trusted
through --control-ca) with a real enrollment: snapshots applied, stored and acked, status
recorded, a refused snapshot nacked while the old one stays, a revoked identity refused with
4403 and retried, and the stored snapshot restored before any connection."""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from common.channel import (
    ChannelClient,
    IngressConfig,
    RetryPolicy,
    ServiceCounters,
    Snapshot,
    SnapshotRejected,
    StatusParts,
)
from common.channel.snapshot import from_document, version_of
from common.enroll import ControlOptions, Started, start
from tests.control.enroll_support import Owner
from tests.control.helpers import check, unique
from tests.e2e.control_plane import ControlPlane, control_plane

FAST = RetryPolicy(initial=0.05, cap=0.2, reset_after=1.0)
HEARTBEAT = 0.3


@pytest.fixture
def cp(tmp_path: Path) -> Iterator[ControlPlane]:
    with control_plane(tmp_path / "control", channel_heartbeat_interval=HEARTBEAT) as plane:
        yield plane


@pytest.fixture
def boss(cp: ControlPlane) -> Iterator[Owner]:
    found = cp.owner()
    yield found
    found.client.close()


@dataclass
class Node:
    row: dict[str, Any]
    started: Started


def enroll_node(cp: ControlPlane, boss: Owner, root: Path) -> Node:
    row = boss.node()
    token = boss.token("ingress", row["id"])["token"]
    options = ControlOptions(cp.url, root / f"{row['name']}.state", token, cp.ca_file)
    return Node(row, start(options, "ingress"))


@dataclass
class Recorder:
    """An `apply` that keeps what it was given, refusing what `refuse` says."""

    applied: list[Snapshot[IngressConfig]] = field(default_factory=list)
    refuse: Callable[[IngressConfig], bool] = lambda config: False

    async def apply(self, snapshot: Snapshot[IngressConfig]) -> None:
        if self.refuse(snapshot.config):
            raise SnapshotRejected("services are not welcome here")
        self.applied.append(snapshot)

    @property
    def services(self) -> list[str]:
        return [s.name for s in self.applied[-1].config.services] if self.applied else []


def client_for(
    node: Node, cp: ControlPlane, recorder: Recorder, **extra: Any
) -> ChannelClient[IngressConfig]:
    counters = StatusParts([ServiceCounters("web", 3, 1, 10, 20, 2)])
    return ChannelClient(
        url=cp.url,
        state=node.started.state,
        kind="ingress",
        model=IngressConfig,
        apply=recorder.apply,
        report=lambda: counters,
        software="kokoa test",
        ca_file=cp.ca_file,
        policy=FAST,
        **extra,
    )


async def eventually(probe: Callable[[], Any], what: str, within: float = 10.0) -> Any:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        found = probe()
        if found:
            return found
        await asyncio.sleep(0.05)
    raise AssertionError(f"not within {within} s: {what}")


async def api(boss: Owner, method: str, path: str, status: int, **body: Any) -> Any:
    def call() -> Any:
        reply = boss.client.request(method, f"{boss.base}{path}", json=body or None)
        return check(reply, status)

    return await asyncio.to_thread(call)


async def add_service(boss: Owner) -> str:
    agent = await asyncio.to_thread(boss.agent)
    name = unique("svc-")
    body = {"name": name, "hostname": f"{name}.example.com", "origin": "http://127.0.0.1:8080"}
    await api(boss, "POST", "/services", 201, **body, agent_ids=[agent["id"]])
    return name


async def test_snapshots_are_applied_stored_acked_and_status_recorded(
    cp: ControlPlane, boss: Owner, tmp_path: Path
) -> None:
    node = enroll_node(cp, boss, tmp_path)
    recorder = Recorder()
    client = client_for(node, cp, recorder)
    assert client.url.startswith("wss://") and client.url.endswith("/api/v1/channel")
    async with asyncio.TaskGroup() as group:
        running = group.create_task(client.run())
        await eventually(lambda: recorder.applied, "the first snapshot")
        first = recorder.applied[0]
        assert str(first.config.node.id) == node.row["id"]
        assert first.config.services == ()
        state = node.started.state
        assert state.snapshot_path.stat().st_mode & 0o777 == 0o600
        assert from_document(state.load_snapshot(), IngressConfig).version == first.version

        name = await add_service(boss)
        await eventually(lambda: name in recorder.services, "the new service applied")
        latest = recorder.applied[-1]
        stored = from_document(state.load_snapshot(), IngressConfig)
        assert (stored.version, stored.config) == (latest.version, latest.config)

        async def recorded() -> dict[str, Any]:
            for _ in range(200):
                status = await api(boss, "GET", f"/status/nodes/{node.row['id']}", 200)
                if status["snapshot_version"] == latest.version:
                    return dict(status)
                await asyncio.sleep(0.05)
            raise AssertionError(f"the control plane never saw version {latest.version}")

        status = await recorded()
        assert status["channel_open"] and status["software"] == "kokoa test"
        ours = [p for p in status["problems"] if "snapshot" in p or "certificate" in p]
        assert ours == []  # (the control plane may derive problems of its own)
        running.cancel()
    assert client.welcome is None


async def test_a_refused_snapshot_is_nacked_and_the_old_one_stays(
    cp: ControlPlane, boss: Owner, tmp_path: Path
) -> None:
    node = enroll_node(cp, boss, tmp_path)
    recorder = Recorder(refuse=lambda config: bool(config.services))
    client = client_for(node, cp, recorder)
    async with asyncio.TaskGroup() as group:
        running = group.create_task(client.run())
        await eventually(lambda: recorder.applied, "the first snapshot")
        first = recorder.applied[0]
        await add_service(boss)

        def refused() -> bool:
            return any("refused" in p for p in client.status()["problems"])

        await eventually(refused, "the refusal among the problems")
        assert client.running is first and recorder.applied == [first]
        assert from_document(node.started.state.load_snapshot(), IngressConfig) == first
        problems = client.status()["problems"]
        assert problems == [
            f"snapshot {problems[0].split()[1]} refused: services are not welcome here"
        ]
        running.cancel()


async def test_a_disabled_node_is_refused_with_4403_and_retried(
    cp: ControlPlane, boss: Owner, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    node = enroll_node(cp, boss, tmp_path)
    recorder = Recorder()
    client = client_for(node, cp, recorder)
    caplog.set_level(logging.INFO, logger="kokoa.channel")

    def refusals() -> list[logging.LogRecord]:
        return [r for r in caplog.records if getattr(r, "code", None) == 4403]

    async with asyncio.TaskGroup() as group:
        running = group.create_task(client.run())
        await eventually(lambda: client.welcome, "the channel open")
        await api(boss, "POST", f"/nodes/{node.row['id']}/disable", 200)
        await eventually(lambda: len(refusals()) >= 2, "refused, then refused again", 20)
        running.cancel()
    first = refusals()[0]
    assert first.levelno == logging.ERROR
    assert "refuses this identity" in first.getMessage()
    assert getattr(first, "refusal", None) in ("disabled", "revoked")
    assert client.running is not None  # what it had stays: the data plane keeps serving


async def test_the_stored_snapshot_is_restored_before_any_connection(
    cp: ControlPlane, boss: Owner, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    node = enroll_node(cp, boss, tmp_path)
    recorder = Recorder()
    client = client_for(node, cp, recorder)
    assert await client.restore() is None  # nothing stored yet
    async with asyncio.TaskGroup() as group:
        running = group.create_task(client.run())
        name = await add_service(boss)
        await eventually(lambda: name in recorder.services, "the service applied")
        running.cancel()

    later = Recorder()
    again = client_for(node, cp, later)
    restored = await again.restore()
    assert restored is not None and later.applied == [restored]
    assert restored.version == recorder.applied[-1].version and again.running is restored
    assert again.status()["snapshot_version"] == restored.version  # said in hello and status

    node.started.state.snapshot_path.write_text('{"version": "damaged"}')
    caplog.set_level(logging.ERROR, logger="kokoa.channel")
    assert await client_for(node, cp, Recorder()).restore() is None
    assert "the stored snapshot cannot be used" in caplog.text


def test_status_reports_a_certificate_close_to_expiry(
    cp: ControlPlane, boss: Owner, tmp_path: Path
) -> None:
    node = enroll_node(cp, boss, tmp_path)
    cert = node.started.state.certificate()
    lifetime = cert.not_valid_after_utc - cert.not_valid_before_utc
    soon = cert.not_valid_after_utc - lifetime / 10
    message = client_for(node, cp, Recorder(), now=lambda: soon).status()
    assert message["type"] == "status" and message["snapshot_version"] is None
    assert message["services"] == [
        {"name": "web", "requests": 3, "errors": 1, "bytes_in": 10, "bytes_out": 20, "in_flight": 2}
    ]
    assert len(message["problems"]) == 1 and "expires in" in message["problems"][0]
    late = cert.not_valid_after_utc + timedelta(seconds=1)
    expired = client_for(node, cp, Recorder(), now=lambda: late).status()["problems"]
    assert expired == ["the tunnel certificate has expired: enroll again with a new token"]
    fresh = client_for(node, cp, Recorder()).status()["problems"]
    assert fresh == []


async def test_a_stored_snapshot_of_another_node_is_not_restored(
    cp: ControlPlane, boss: Owner, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A state directory enrolled again as another node (a crash between the new certificate
    and dropping the old snapshot, or a directory copied from another host) may hold a
    snapshot that is not this node's: its services and HTTPS keys are not to be served."""
    node = enroll_node(cp, boss, tmp_path)
    mine = node.started.enrollment.subject

    def document(node_id: str) -> dict[str, Any]:
        config = {"node": {"id": node_id, "name": "a-node", "org_id": str(mine.org_id)}}
        return {"version": version_of(config), "issued_at": "2030-01-01T00:00:00+00:00"} | {
            "config": config
        }

    state = node.started.state
    state.save_snapshot(document(str(uuid.uuid4())))
    caplog.set_level(logging.ERROR, logger="kokoa.channel")
    recorder = Recorder()
    assert await client_for(node, cp, recorder).restore() is None
    assert recorder.applied == []
    [record] = [r for r in caplog.records if "stored snapshot cannot be used" in r.getMessage()]
    assert str(getattr(record, "error", "")).startswith("it is another node's")

    state.save_snapshot(document(str(mine.id)))
    restored = await client_for(node, cp, recorder).restore()
    assert restored is not None and recorder.applied == [restored]
