"""The control channel against a real uvicorn (SQLite and PostgreSQL) with a real `websockets`
client and certificates from real enrollments: the handshake and its refusals, what a node and
an agent are told, and tenancy."""

from __future__ import annotations

import asyncio
import hashlib
import json
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from fastapi import FastAPI
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed
from websockets.typing import Subprotocol

from common import pki
from common.enroll.proof import new_key, sign_channel
from tests.control.enroll_support import ENROLL, Owner, enroll_body, owner, pem
from tests.control.helpers import Clock, check, unique
from tests.control.server import serve

SUBPROTOCOL = Subprotocol("kokoa-channel.v1")
TIMEOUT = 10.0
MakeHello = Callable[[str], dict[str, Any]]


@dataclass
class Enrolled:
    kind: str
    subject: dict[str, Any]
    key: ec.EllipticCurvePrivateKey
    cert: x509.Certificate

    @property
    def id(self) -> str:
        return str(self.subject["id"])

    @property
    def serial(self) -> str:
        return f"{self.cert.serial_number:x}"


def enroll(boss: Owner, kind: str, subject: dict[str, Any]) -> Enrolled:
    """Enroll `subject` through the API as `kokoa ingress/edge run --token` does."""
    key = new_key()
    token = boss.token(kind, subject["id"])["token"]
    reply = check(boss.client.post(ENROLL, json=enroll_body(token, kind, key)), 201)
    cert = x509.load_pem_x509_certificate(reply["certificate"].encode())
    return Enrolled(kind, subject, key, cert)


def channel_url(base_url: str) -> str:
    return base_url.replace("http://", "ws://", 1) + "/api/v1/channel"


async def receive(ws: ClientConnection, within: float = TIMEOUT) -> dict[str, Any]:
    async with asyncio.timeout(within):
        data: dict[str, Any] = json.loads(await ws.recv())
    return data


def hello(
    got: Enrolled,
    nonce: str,
    *,
    kind: str | None = None,
    key: ec.EllipticCurvePrivateKey | None = None,
    cert: x509.Certificate | None = None,
) -> dict[str, Any]:
    cert = cert or got.cert
    return {
        "type": "hello",
        "kind": kind or got.kind,
        "certificate": pem(cert),
        "signature": sign_channel(key or got.key, nonce, cert.serial_number),
        "software": "kokoa test",
        "snapshot_version": None,
    }


@dataclass
class Open:
    ws: ClientConnection
    welcome: dict[str, Any]
    snapshot: dict[str, Any]

    @property
    def config(self) -> dict[str, Any]:
        config: dict[str, Any] = self.snapshot["config"]
        return config

    async def next_snapshot(self, within: float = TIMEOUT) -> dict[str, Any]:
        """The next message, which must be a snapshot (acked here)."""
        message = await receive(self.ws, within)
        assert message["type"] == "snapshot", message
        self.snapshot = message
        await self.ws.send(json.dumps({"type": "ack", "version": message["version"]}))
        return message

    async def status(self) -> None:
        await self.ws.send(json.dumps(status_message(self.snapshot["version"])))


def status_message(version: str | None) -> dict[str, Any]:
    return {
        "type": "status",
        "sent_at": "2030-01-01T00:00:00Z",
        "snapshot_version": version,
        "software": "kokoa test",
        "started_at": "2030-01-01T00:00:00Z",
        "services": [],
        "connections": [],
        "problems": [],
    }


@asynccontextmanager
async def channel(base_url: str, got: Enrolled) -> AsyncIterator[Open]:
    """An open channel of `got`: after the welcome and the first snapshot."""
    async with connect(channel_url(base_url), subprotocols=[SUBPROTOCOL]) as ws:
        challenge = await receive(ws)
        assert challenge["type"] == "challenge", challenge
        await ws.send(json.dumps(hello(got, challenge["nonce"])))
        welcome = await receive(ws)
        assert welcome["type"] == "welcome", welcome
        snapshot = await receive(ws)
        assert snapshot["type"] == "snapshot", snapshot
        opened = Open(ws, welcome, snapshot)
        await ws.send(json.dumps({"type": "ack", "version": snapshot["version"]}))
        yield opened


async def closed_with(ws: ClientConnection) -> tuple[int | None, str]:
    """Read until the server closes; (close code, reason)."""
    with pytest.raises(ConnectionClosed):
        for _ in range(100):
            await receive(ws)
    return ws.close_code, ws.close_reason or ""


async def refused(base_url: str, make_hello: MakeHello) -> tuple[dict[str, Any], int | None]:
    """(error message, close code) for a hello made by `make_hello(nonce)`."""
    async with connect(channel_url(base_url), subprotocols=[SUBPROTOCOL]) as ws:
        challenge = await receive(ws)
        await ws.send(json.dumps(make_hello(challenge["nonce"])))
        error = await receive(ws)
        code, reason = await closed_with(ws)
        assert reason and reason in error["detail"]
        return error, code


def version_of(config: dict[str, Any]) -> str:
    canonical = json.dumps(config, sort_keys=True, separators=(",", ":")).encode()
    return hashlib.sha256(canonical).hexdigest()


def service(boss: Owner, *agents: Enrolled, **extra: Any) -> dict[str, Any]:
    name = unique("svc-")
    body = {
        "name": name,
        "hostname": f"{name}.example.com",
        "origin": "http://127.0.0.1:8080",
        "agent_ids": [agent.id for agent in agents],
    } | extra
    return dict(check(boss.client.post(f"{boss.base}/services", json=body), 201))


@pytest.fixture
def server(app: FastAPI) -> Iterator[str]:
    with serve(app) as base_url:
        yield base_url


@pytest.fixture
def boss(server: str) -> Iterator[Owner]:
    found = owner(server)
    yield found
    found.client.close()


async def test_an_agent_and_a_node_are_welcomed_with_a_versioned_snapshot(
    server: str, boss: Owner
) -> None:
    for got in (enroll(boss, "agent", boss.agent()), enroll(boss, "ingress", boss.node())):
        async with channel(server, got) as opened:
            assert opened.ws.subprotocol == SUBPROTOCOL
            assert opened.welcome == {
                "type": "welcome",
                "kind": got.kind,
                "id": got.id,
                "org_id": boss.org_id,
                "name": got.subject["name"],
                "heartbeat_interval": 5.0,
            }
            snapshot = opened.snapshot
            assert set(snapshot) == {"type", "version", "issued_at", "config"}
            assert snapshot["version"] == version_of(snapshot["config"])
            assert snapshot["issued_at"].endswith("+00:00")
            own = {"id": got.id, "name": got.subject["name"], "org_id": boss.org_id}
            assert snapshot["config"]["agent" if got.kind == "agent" else "node"] == own
            await opened.status()


async def test_a_node_is_told_its_organisations_enabled_services_and_agents(
    server: str, boss: Owner
) -> None:
    one = enroll(boss, "agent", boss.agent())
    two = enroll(boss, "agent", boss.agent())
    gone = enroll(boss, "agent", boss.agent())
    elsewhere = enroll(boss, "agent", boss.agent(ingress_mode="labels", ingress_labels={"r": "x"}))
    served = service(boss, one, two, gone, elsewhere)
    idle = service(boss)
    service(boss, one, enabled=False)
    check(boss.client.post(f"{boss.base}/agents/{two.id}/disable"), 200)
    assert boss.client.delete(f"{boss.base}/agents/{gone.id}").status_code == 204
    node = enroll(boss, "ingress", boss.node(labels={"r": "y"}))
    async with channel(server, node) as opened:
        config = opened.config
    org = boss.org_id
    assert config["node"] == {"id": node.id, "name": node.subject["name"], "org_id": org}
    assert config["services"] == sorted(
        [
            {
                "id": served["id"],
                "name": served["name"],
                "hosts": [served["hostname"]],
                "path_prefix": "/",
                "strip_prefix": False,
                "agents": [f"{org}/{one.id}"],  # not disabled, deleted, or using other nodes
            },
            {
                "id": idle["id"],
                "name": idle["name"],
                "hosts": [idle["hostname"]],
                "path_prefix": "/",
                "strip_prefix": False,
                "agents": [],
            },
        ],
        key=lambda item: str(item["id"]),
    )
    assert config["revoked"] == {
        "serials": sorted([two.serial, gone.serial]),
        "identities": sorted([f"{org}/{two.id}", f"{org}/{gone.id}"]),
    }


async def test_an_agent_is_told_its_nodes_and_services_with_their_origins(
    server: str, boss: Owner
) -> None:
    east = boss.node("192.0.2.1:7844", labels={"region": "east"})
    west = boss.node("tunnel.example.net:7844", labels={"region": "west"})
    boss.node("192.0.2.3:7844", enabled=False)
    picky = enroll(
        boss, "agent", boss.agent(ingress_mode="labels", ingress_labels={"region": "east"})
    )
    anywhere = enroll(boss, "agent", boss.agent())
    mine = service(
        boss, picky, anywhere, host_header="app.internal", tls_verify=False,
        connect_timeout=2.5, read_timeout=30, origin="https://10.0.0.5:8443",
    )  # fmt: skip
    service(boss, anywhere)  # not picky's
    service(boss, picky, enabled=False)
    async with channel(server, picky) as opened:
        config = opened.config
    assert config["ingress"] == [
        {
            "id": east["id"],
            "name": east["name"],
            "address": "192.0.2.1:7844",
            "server_name": "192.0.2.1",
        }
    ]
    assert config["services"] == [
        {
            "id": mine["id"],
            "name": mine["name"],
            "origin": "https://10.0.0.5:8443",
            "host_header": "app.internal",
            "tls_verify": False,
            "connect_timeout": 2.5,
            "read_timeout": 30.0,
        }
    ]
    async with channel(server, anywhere) as opened:
        nodes = opened.config["ingress"]
    assert nodes == sorted(
        [
            {
                "id": east["id"],
                "name": east["name"],
                "address": "192.0.2.1:7844",
                "server_name": "192.0.2.1",
            },
            {
                "id": west["id"],
                "name": west["name"],
                "address": "tunnel.example.net:7844",
                "server_name": "tunnel.example.net",
            },
        ],
        key=lambda item: str(item["id"]),
    )
    assert len(opened.config["services"]) == 2


@pytest.mark.parametrize("settings_overrides", [{"open_signup": True}])
async def test_a_node_or_agent_never_sees_another_organisations_data(
    server: str, boss: Owner
) -> None:
    other = owner(server)
    try:
        theirs = enroll(other, "agent", other.agent())
        their_service = service(other, theirs)
        their_node = enroll(other, "ingress", other.node())
        check(other.client.post(f"{other.base}/agents/{theirs.id}/disable"), 200)  # revoked
        ours = enroll(boss, "agent", boss.agent())
        service(boss, ours)
        our_node = enroll(boss, "ingress", boss.node())
        foreign = {other.org_id, theirs.id, their_service["id"], their_service["hostname"],
                   their_node.id, theirs.serial}  # fmt: skip
        for got in (our_node, ours):
            async with channel(server, got) as opened:
                text = json.dumps(opened.snapshot)
            assert not [value for value in foreign if value in text], got.kind
            assert boss.org_id in text
        async with channel(server, their_node) as opened:
            assert [item["id"] for item in opened.config["services"]] == [their_service["id"]]
            assert opened.config["revoked"]["serials"] == [theirs.serial]
    finally:
        other.client.close()


async def test_refusals_say_why_and_close_with_4401_or_4403(
    server: str, boss: Owner, clock: Clock
) -> None:
    agent = enroll(boss, "agent", boss.agent())
    node = enroll(boss, "ingress", boss.node())
    cases: list[tuple[str, MakeHello, str, int]] = [
        ("other key", lambda n: hello(agent, n, key=new_key()), "refused", 4401),
        ("wrong kind", lambda n: hello(agent, n, kind="ingress"), "refused", 4401),
        ("node as agent", lambda n: hello(node, n, kind="agent"), "refused", 4401),
        ("foreign CA", lambda n: hello(agent, n, **_forged(agent, boss)), "refused", 4401),
        ("garbage", lambda n: hello(agent, n) | {"certificate": "-----BEGIN"}, "refused", 4401),
    ]
    for what, make, code, close in cases:
        error, got = await refused(server, make)
        assert (error["type"], error["code"], got) == ("error", code, close), what
    stale = enroll(boss, "agent", boss.agent())
    clock.advance(days=7, minutes=6)  # past the certificates' lifetime
    error, got = await refused(server, lambda n: hello(stale, n))
    assert (error["code"], got) == ("refused", 4401) and "expired" in error["detail"]
    clock.advance(days=-7, minutes=-6)

    base = f"{boss.base}/agents/{agent.id}"
    check(boss.client.post(f"{base}/disable"), 200)
    error, got = await refused(server, lambda n: hello(agent, n))
    assert (error["code"], got) == ("disabled", 4403)
    check(boss.client.post(f"{base}/enable"), 200)
    error, got = await refused(server, lambda n: hello(agent, n))
    assert (error["code"], got) == ("revoked", 4403)
    assert "enroll again" in error["detail"]
    again = enroll(boss, "agent", agent.subject)  # a new enrollment is the way back
    async with channel(server, again) as opened:
        assert opened.welcome["id"] == agent.id


async def test_a_stale_nonce_is_refused(server: str, boss: Owner, clock: Clock) -> None:
    got = enroll(boss, "agent", boss.agent())
    async with connect(channel_url(server), subprotocols=[SUBPROTOCOL]) as ws:
        challenge = await receive(ws)
        clock.advance(minutes=6)
        await ws.send(json.dumps(hello(got, challenge["nonce"])))
        error = await receive(ws)
        assert error["code"] == "refused" and "nonce" in error["detail"]
        assert (await closed_with(ws))[0] == 4401


@pytest.mark.parametrize("settings_overrides", [{"enroll_limit_ip": "2/minute"}])
async def test_failed_handshakes_are_throttled_per_address(server: str, boss: Owner) -> None:
    got = enroll(boss, "agent", boss.agent())
    for _ in range(2):
        error, _code = await refused(server, lambda n: hello(got, n, key=new_key()))
        assert "signature" in error["detail"]
    error, code = await refused(server, lambda n: hello(got, n))  # a good hello, too late
    assert code == 4401 and "too many" in error["detail"]


def _forged(got: Enrolled, boss: Owner) -> dict[str, Any]:
    """The same identity and serial from a CA of the same name that is not ours."""
    ca_key, ca_cert = pki.create_ca(got.cert.issuer.rfc4514_string().split("=", 1)[1])
    key = new_key()
    _, cert = pki.issue_certificate(
        ca_key, ca_cert, role="agent", name=got.id, org=boss.org_id, public_key=key.public_key()
    )
    builder = (
        x509.CertificateBuilder()
        .subject_name(cert.subject)
        .issuer_name(cert.issuer)
        .public_key(cert.public_key())
        .serial_number(got.cert.serial_number)
        .not_valid_before(cert.not_valid_before_utc)
        .not_valid_after(cert.not_valid_before_utc + timedelta(days=1))
    )
    for extension in cert.extensions:
        builder = builder.add_extension(extension.value, extension.critical)
    return {"cert": builder.sign(ca_key, hashes.SHA256()), "key": key}
