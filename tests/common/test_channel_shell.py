"""The channel client's shell against a scripted WebSocket server on 127.0.0.1, for what a real
control plane never does: a welcome for the other kind, a malformed snapshot, a snapshot that
arrives twice or issued earlier, an unknown message type; and what the hello carries (the
subprotocol, a signature that verifies with the state directory's certificate)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from websockets.asyncio.server import ServerConnection, serve
from websockets.exceptions import ConnectionClosed

from common import pki
from common.channel import ChannelClient, IngressConfig, RetryPolicy, Snapshot, StatusParts
from common.channel.snapshot import version_of
from common.enroll.proof import verify_channel
from common.enroll.state import StateDir

SUBPROTOCOL = "kokoa-channel.v1"
NODE, ORG = "6f1f6c2a-8a36-4a43-a7d8-0a3bdc1d1e01", "0c3a9e0e-2b1d-4d8e-9a55-6a1d2c3b4e5f"
Script = Callable[[ServerConnection, "Seen"], Awaitable[None]]


@dataclass
class Seen:
    hellos: list[dict[str, Any]] = field(default_factory=list)
    received: list[dict[str, Any]] = field(default_factory=list)
    closes: list[tuple[int | None, str]] = field(default_factory=list)
    subprotocols: list[str | None] = field(default_factory=list)


def state_dir(root: Path) -> StateDir:
    key, ca = pki.create_ca("channel test CA", days=1)
    leaf_key, leaf = pki.issue_certificate(
        key, ca, role="ingress", name=NODE, org=ORG, ip_addresses=["127.0.0.1"], days=1
    )
    assert leaf_key is not None
    state = StateDir(root / "state")
    state.root.mkdir(mode=0o700)
    pki.write_key(state.tls.key, leaf_key)
    pki.write_certificate(state.tls.cert, leaf)
    pki.write_certificate(state.tls.ca, ca)
    return state


def welcome(kind: str = "ingress") -> str:
    return json.dumps(
        {"type": "welcome", "kind": kind, "id": NODE, "org_id": ORG, "name": "n",
         "heartbeat_interval": 0.2}
    )  # fmt: skip


def snapshot(services: int, issued_at: datetime) -> dict[str, Any]:
    config = {
        "node": {"id": NODE, "name": "n", "org_id": ORG},
        "services": [
            {"id": f"00000000-0000-4000-8000-{i:012d}", "name": f"s{i}", "hosts": [f"s{i}.test"]}
            for i in range(services)
        ],
        "revoked": {"serials": [], "identities": []},
    }
    version = version_of(config)
    return {"type": "snapshot", "version": version, "issued_at": issued_at.isoformat(),
            "config": config}  # fmt: skip


def no_report() -> StatusParts:
    return StatusParts()


async def run_client(
    tmp_path: Path,
    script: Script,
    until: Callable[[Seen, list[Snapshot[IngressConfig]]], bool],
    *,
    report: Callable[[], StatusParts] = no_report,
    fail_apply: bool = False,
) -> tuple[Seen, list[Snapshot[IngressConfig]], ChannelClient[IngressConfig]]:
    seen = Seen()
    applied: list[Snapshot[IngressConfig]] = []

    async def handler(ws: ServerConnection) -> None:
        seen.subprotocols.append(ws.subprotocol)
        await ws.send(json.dumps({"type": "challenge", "nonce": "nonce-1"}))
        seen.hellos.append(json.loads(await ws.recv()))
        try:
            await script(ws, seen)
            async for frame in ws:
                seen.received.append(json.loads(frame))
        except ConnectionClosed:
            pass
        seen.closes.append((ws.close_code, ws.close_reason or ""))

    async def apply(received: Snapshot[IngressConfig]) -> None:
        if fail_apply:
            raise RuntimeError("a bug")
        applied.append(received)

    async with serve(handler, "127.0.0.1", 0, subprotocols=[SUBPROTOCOL]) as server:  # type: ignore[list-item]
        port = server.sockets[0].getsockname()[1]
        client = ChannelClient(
            url=f"http://127.0.0.1:{port}",
            state=state_dir(tmp_path),
            kind="ingress",
            model=IngressConfig,
            apply=apply,
            report=report,
            software="kokoa test",
            policy=RetryPolicy(initial=0.01, cap=0.05),
        )
        assert client.url == f"ws://127.0.0.1:{port}/api/v1/channel"
        async with asyncio.timeout(30), asyncio.TaskGroup() as group:
            running = group.create_task(client.run())
            while not until(seen, applied):  # noqa: ASYNC110 - plain lists the script fills
                await asyncio.sleep(0.01)
            running.cancel()
    return seen, applied, client


async def test_the_hello_is_signed_by_the_tunnel_key(tmp_path: Path) -> None:
    async def script(ws: ServerConnection, seen: Seen) -> None:
        await ws.send(welcome())
        await ws.send(json.dumps(snapshot(1, datetime.now(UTC))))

    seen, applied, client = await run_client(tmp_path, script, lambda s, a: bool(s.received))
    hello = seen.hellos[0]
    assert seen.subprotocols == [SUBPROTOCOL]
    assert (hello["type"], hello["kind"], hello["software"]) == ("hello", "ingress", "kokoa test")
    assert hello["snapshot_version"] is None
    cert = pki.load_certificates(tmp_path / "state" / "tunnel.crt")[0]
    assert hello["certificate"].startswith("-----BEGIN CERTIFICATE-----")
    assert verify_channel(cert, "nonce-1", hello["signature"])
    assert not verify_channel(cert, "nonce-2", hello["signature"])
    assert seen.received[0] == {"type": "ack", "version": applied[0].version}
    assert client.running is applied[0]


async def test_a_welcome_for_the_other_kind_closes_with_4400_and_is_dialled_again(
    tmp_path: Path,
) -> None:
    async def script(ws: ServerConnection, seen: Seen) -> None:
        await ws.send(welcome("agent"))

    seen, applied, _ = await run_client(tmp_path, script, lambda s, a: len(s.closes) >= 2)
    code, reason = seen.closes[0]
    assert code == 4400 and "welcomed as agent" in reason
    assert applied == [] and len(seen.hellos) >= 2


async def test_a_malformed_snapshot_closes_with_4400(tmp_path: Path) -> None:
    async def script(ws: ServerConnection, seen: Seen) -> None:
        await ws.send(welcome())
        await ws.send(json.dumps({"type": "snapshot", "version": "nope"}))

    seen, applied, _ = await run_client(tmp_path, script, lambda s, a: bool(s.closes))
    code, reason = seen.closes[0]
    assert code == 4400 and "bad snapshot message" in reason and applied == []


async def test_same_stale_and_unknown_messages(tmp_path: Path) -> None:
    now = datetime.now(UTC)
    first, older = snapshot(1, now), snapshot(2, now - timedelta(seconds=5))

    async def script(ws: ServerConnection, seen: Seen) -> None:
        await ws.send(welcome())
        await ws.send(json.dumps(first))
        await ws.send(json.dumps({"type": "from-the-future", "x": 1}))  # ignored
        await ws.send(json.dumps(first | {"issued_at": (now + timedelta(1)).isoformat()}))
        await ws.send(json.dumps(older))  # issued before the one running: ignored
        await ws.send(json.dumps(snapshot(3, now + timedelta(seconds=1))))

    def done(seen: Seen, applied: list[Snapshot[IngressConfig]]) -> bool:
        return len(applied) >= 2 and any(m["type"] == "status" for m in seen.received)

    seen, applied, _ = await run_client(tmp_path, script, done)
    assert [len(s.config.services) for s in applied] == [1, 3]  # the stale one never applied
    acks = [m for m in seen.received if m["type"] in ("ack", "nack")]
    assert acks[:3] == [
        {"type": "ack", "version": first["version"]},
        {"type": "ack", "version": first["version"]},  # the same version again: acked
        {"type": "ack", "version": applied[1].version},
    ]
    status = next(m for m in seen.received if m["type"] == "status")
    assert status["snapshot_version"] in (first["version"], applied[1].version)
    assert seen.closes == [] or seen.closes[0][0] != 4400  # nothing broke the protocol


@pytest.mark.parametrize("code", [4401, 4408, 1011])
async def test_other_closes_are_dialled_again(tmp_path: Path, code: int) -> None:
    async def script(ws: ServerConnection, seen: Seen) -> None:
        await ws.close(code, "go away")

    seen, _, _ = await run_client(tmp_path, script, lambda s, a: len(s.hellos) >= 3)
    assert len(seen.hellos) >= 3


async def test_bugs_in_apply_and_report_cost_neither_the_channel_nor_the_process(
    tmp_path: Path,
) -> None:
    async def script(ws: ServerConnection, seen: Seen) -> None:
        await ws.send(welcome())
        await ws.send(json.dumps(snapshot(1, datetime.now(UTC))))

    def broken() -> StatusParts:
        raise ZeroDivisionError

    def done(seen: Seen, applied: list[Snapshot[IngressConfig]]) -> bool:
        return len([m for m in seen.received if m["type"] == "status"]) >= 2

    seen, applied, client = await run_client(tmp_path, script, done, report=broken, fail_apply=True)
    nack = seen.received[0]
    assert nack["type"] == "nack" and nack["error"] == "internal error: RuntimeError('a bug')"
    status = next(m for m in seen.received if m["type"] == "status")
    assert status["snapshot_version"] is None and status["services"] == []
    assert "internal error while building the status report" in status["problems"]
    assert any(
        p.endswith("refused: internal error: RuntimeError('a bug')") for p in status["problems"]
    )
    assert applied == [] and client.running is None and len(seen.hellos) == 1
