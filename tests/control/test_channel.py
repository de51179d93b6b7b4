"""The control channel against a real uvicorn (SQLite and PostgreSQL) with a real `websockets`
client and certificates from real enrollments: the handshake and its refusals, what a node and
an agent are told, and tenancy."""

from __future__ import annotations

import hashlib
import json
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec
from fastapi import FastAPI
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from common.enroll.proof import new_key, sign_channel
from tests.control.enroll_support import ENROLL, Owner, enroll_body, owner, pem
from tests.control.helpers import check
from tests.control.server import serve

SUBPROTOCOL = "kokoa-channel.v1"
TIMEOUT = 10.0


@dataclass
class Enrolled:
    kind: str
    subject: dict[str, Any]
    key: ec.EllipticCurvePrivateKey
    cert: x509.Certificate

    @property
    def serial(self) -> str:
        return f"{self.cert.serial_number:x}"


def enroll(boss: Owner, kind: str, subject: dict[str, Any]) -> Enrolled:
    """Enroll `subject` through the API as `kokoa ingress/edge run --token` does."""
    key = new_key()
    token = boss.token(kind, subject["id"])["token"]
    reply = check(boss.client.post(ENROLL, json=enroll_body(token, kind, key)), 201)
    return Enrolled(
        kind, subject, key, x509.load_pem_x509_certificate(reply["certificate"].encode())
    )


def channel_url(base_url: str) -> str:
    return base_url.replace("http://", "ws://", 1) + "/api/v1/channel"


async def receive(ws: ClientConnection) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(await _recv(ws))
    return data


async def _recv(ws: ClientConnection) -> str | bytes:
    import asyncio

    async with asyncio.timeout(TIMEOUT):
        return await ws.recv()


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


@asynccontextmanager
async def channel(base_url: str, got: Enrolled) -> AsyncIterator[Open]:
    """An open channel of `got`: after the welcome and the first snapshot."""
    async with connect(channel_url(base_url), subprotocols=[SUBPROTOCOL]) as ws:  # type: ignore[list-item]
        challenge = await receive(ws)
        await ws.send(json.dumps(hello(got, challenge["nonce"])))
        welcome = await receive(ws)
        assert welcome["type"] == "welcome", welcome
        snapshot = await receive(ws)
        assert snapshot["type"] == "snapshot", snapshot
        yield Open(ws, welcome, snapshot)


async def refused(base_url: str, make_hello: Any) -> tuple[dict[str, Any], int, str]:
    """(error message, close code, reason) for a hello made by `make_hello(nonce)`."""
    async with connect(channel_url(base_url), subprotocols=[SUBPROTOCOL]) as ws:  # type: ignore[list-item]
        challenge = await receive(ws)
        await ws.send(json.dumps(make_hello(challenge["nonce"])))
        error = await receive(ws)
        with pytest.raises(ConnectionClosed):
            await receive(ws)
        assert ws.close_code is not None
        return error, ws.close_code, ws.close_reason or ""


@pytest.fixture
def server(app: FastAPI) -> Iterator[str]:
    with serve(app) as base_url:
        yield base_url


@pytest.fixture
def boss(server: str) -> Iterator[Owner]:
    found = owner(server)
    yield found
    found.client.close()


def version_of(config: dict[str, Any]) -> str:
    canonical = json.dumps(config, sort_keys=True, separators=(",", ":")).encode()
    return hashlib.sha256(canonical).hexdigest()


async def test_an_agent_is_welcomed_and_told_its_config(server: str, boss: Owner) -> None:
    got = enroll(boss, "agent", boss.agent())
    async with channel(server, got) as opened:
        assert opened.ws.subprotocol == SUBPROTOCOL
        assert opened.welcome == {
            "type": "welcome",
            "kind": "agent",
            "id": got.subject["id"],
            "org_id": boss.org_id,
            "name": got.subject["name"],
            "heartbeat_interval": 5.0,
        }
        snapshot = opened.snapshot
        assert snapshot["version"] == version_of(snapshot["config"])
        assert snapshot["config"]["agent"] == {
            "id": got.subject["id"],
            "name": got.subject["name"],
            "org_id": boss.org_id,
        }


def _unused(_: httpx.Client) -> None:
    pass
