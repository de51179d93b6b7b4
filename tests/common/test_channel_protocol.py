"""The control channel's client core without sockets: parsing the server's frames, the phases,
judging snapshots, close verdicts, retry delays, snapshot decoding and the stored snapshot."""

from __future__ import annotations

import json
import logging
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from common.channel import messages
from common.channel.messages import ChannelProtocolError, SnapshotMessage, parse
from common.channel.protocol import (
    Challenged,
    ChannelProtocol,
    Decision,
    Offered,
    Phase,
    Refused,
    Running,
    Welcomed,
    classify_close,
    judge,
)
from common.channel.snapshot import (
    AgentConfig,
    IngressConfig,
    SnapshotRejected,
    decode,
    from_document,
    version_of,
)
from common.enroll.state import StateDir

ORG, NODE, AGENT, SERVICE, GONE = (str(uuid.uuid4()) for _ in range(5))
T0 = datetime(2030, 1, 1, tzinfo=UTC)


def ingress_config(**extra: Any) -> dict[str, Any]:
    return {
        "node": {"id": NODE, "name": "node-1", "org_id": ORG},
        "services": [
            {
                "id": SERVICE,
                "name": "web",
                "hosts": ["web.example.com"],
                "path_prefix": "/",
                "strip_prefix": False,
                "agents": [f"{ORG}/{AGENT}"],
            }
        ],
        "revoked": {"serials": ["1f"], "identities": [f"{ORG}/{GONE}"]},
    } | extra


def snapshot_frame(config: dict[str, Any], issued_at: datetime = T0, **extra: Any) -> str:
    message = {
        "type": "snapshot",
        "version": version_of(config),
        "issued_at": issued_at.isoformat(),
        "config": config,
    }
    return json.dumps(message | extra)


def welcome(kind: str = "ingress") -> str:
    message = {
        "type": "welcome",
        "kind": kind,
        "id": NODE,
        "org_id": ORG,
        "name": "node-1",
        "heartbeat_interval": 5.0,
    }
    return json.dumps(message)


# ---- parsing -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("frame", "reason"),
    [
        (b"{}", "binary frames"),
        ("not json", "not valid JSON"),
        ("[1, 2]", "JSON object with a string type"),
        ('{"type": 3}', "JSON object with a string type"),
        ('{"type": "challenge"}', "bad challenge message: nonce"),
        ('{"type": "welcome", "kind": "robot"}', "bad welcome message"),
        (
            '{"type": "snapshot", "version": "x", "issued_at": "2030-01-01T00:00:00Z", '
            '"config": {}}',
            "bad snapshot message: version",
        ),
        (
            '{"type": "snapshot", "version": "'
            + "0" * 64
            + '", "issued_at": "2030-01-01T00:00:00",'
            ' "config": {}}',
            "issued_at",
        ),  # no time zone
        ("x" * (messages.MAX_MESSAGE + 1), "at most"),
    ],
)
def test_bad_frames_are_protocol_errors(frame: str | bytes, reason: str) -> None:
    with pytest.raises(ChannelProtocolError, match=reason):
        parse(frame)


def test_unknown_types_and_fields_are_ignored() -> None:
    assert parse('{"type": "newfangled", "x": 1}') is None
    challenge = parse('{"type": "challenge", "nonce": "abc", "later": true}')
    assert challenge is not None and challenge.type == "challenge"


# ---- phases ------------------------------------------------------------------------------


def test_the_phases_in_order() -> None:
    protocol = ChannelProtocol("ingress")
    assert protocol.receive('{"type": "challenge", "nonce": "n1"}') == Challenged("n1")
    assert protocol.phase is Phase.WELCOME
    event = protocol.receive(welcome())
    assert isinstance(event, Welcomed) and event.welcome.heartbeat_interval == 5.0
    frame = snapshot_frame(ingress_config())
    offered = protocol.receive(frame)
    assert isinstance(offered, Offered) and offered.snapshot.config == ingress_config()
    assert isinstance(protocol.receive(frame), Offered)  # any number of snapshots
    refused = protocol.receive('{"type": "error", "code": "revoked", "detail": "gone"}')
    assert refused == Refused("revoked", "gone")


@pytest.mark.parametrize(
    ("frames", "reason"),
    [
        ([welcome()], "unexpected welcome message while waiting for a challenge"),
        ([snapshot_frame({})], "unexpected snapshot message while waiting for a challenge"),
        (['{"type": "challenge", "nonce": "n"}'] * 2, "unexpected challenge"),
        (['{"type": "challenge", "nonce": "n"}', welcome("agent")], "welcomed as agent"),
        (
            [
                '{"type": "challenge", "nonce": "n"}',
                welcome(),
                '{"type": "challenge", "nonce": "m"}',
            ],
            "while waiting for snapshots",
        ),
    ],
)
def test_messages_out_of_turn_are_protocol_errors(frames: list[str], reason: str) -> None:
    protocol = ChannelProtocol("ingress")
    *before, last = frames
    for frame in before:
        protocol.receive(frame)
    with pytest.raises(ChannelProtocolError, match=reason):
        protocol.receive(last)


def test_an_error_is_a_refusal_in_any_phase() -> None:
    protocol = ChannelProtocol("agent")
    event = protocol.receive('{"type": "error", "code": "refused", "detail": "bad nonce"}')
    assert event == Refused("refused", "bad nonce")
    assert protocol.phase is Phase.CHALLENGE


# ---- judging snapshots --------------------------------------------------------------------


def test_judge() -> None:
    running = Running("a" * 64, T0)
    assert judge("b" * 64, T0, None) is Decision.APPLY
    assert judge("a" * 64, T0 - timedelta(hours=1), running) is Decision.SAME
    assert judge("b" * 64, T0 + timedelta(seconds=1), running) is Decision.APPLY
    assert judge("b" * 64, T0, running) is Decision.APPLY  # issued at the same time: not older
    assert judge("b" * 64, T0 - timedelta(milliseconds=1), running) is Decision.STALE


@pytest.mark.parametrize(
    ("code", "forbidden", "level"),
    [
        (4403, True, logging.ERROR),
        (4401, False, logging.WARNING),
        (4400, False, logging.ERROR),
        (4408, False, logging.WARNING),
        (1011, False, logging.WARNING),
        (None, False, logging.WARNING),
    ],
)
def test_close_verdicts(code: int | None, forbidden: bool, level: int) -> None:
    verdict = classify_close(code)
    assert (verdict.forbidden, verdict.level) == (forbidden, level)


# ---- decoding snapshots --------------------------------------------------------------------


def message(frame: str) -> SnapshotMessage:
    parsed = parse(frame)
    assert isinstance(parsed, SnapshotMessage)
    return parsed


def test_decode_an_ingress_snapshot() -> None:
    snapshot = decode(message(snapshot_frame(ingress_config())), IngressConfig)
    config = snapshot.config
    assert config.node.name == "node-1"
    assert [s.name for s in config.services] == ["web"]
    assert config.services[0].agents == (f"{ORG}/{AGENT}",)
    assert config.revoked.serial_numbers() == {0x1F}
    assert snapshot.document["config"] == ingress_config()


def test_decode_refuses_a_version_that_is_not_the_configs() -> None:
    frame = snapshot_frame(ingress_config(), version="0" * 64)
    with pytest.raises(SnapshotRejected, match="SHA-256"):
        decode(message(frame), IngressConfig)


def test_decode_names_the_first_bad_field() -> None:
    config = ingress_config(services=[{"id": SERVICE, "name": "web"}])
    with pytest.raises(SnapshotRejected, match=r"config\.services\.0\.hosts"):
        decode(message(snapshot_frame(config)), IngressConfig)
    with pytest.raises(SnapshotRejected, match=r"config\.agent"):
        decode(message(snapshot_frame(ingress_config())), AgentConfig)


def test_revoked_serials_must_be_hex() -> None:
    config = decode(
        message(snapshot_frame(ingress_config(revoked={"serials": ["zz"]}))), IngressConfig
    ).config
    with pytest.raises(SnapshotRejected, match="hexadecimal"):
        config.revoked.serial_numbers()


def test_an_agent_snapshot_with_unknown_fields() -> None:
    config = {
        "agent": {"id": AGENT, "name": "a", "org_id": ORG, "labels": {}},
        "ingress": [{"id": NODE, "name": "n", "address": "127.0.0.1:7844", "server_name": None}],
        "services": [{"id": SERVICE, "name": "web", "origin": "http://127.0.0.1:80", "new": 1}],
    }
    snapshot = decode(message(snapshot_frame(config)), AgentConfig)
    assert snapshot.config.services[0].read_timeout == 60.0
    assert snapshot.raw == config  # stored as sent: its version still matches


# ---- the stored snapshot ------------------------------------------------------------------


def test_store_and_read_back(tmp_path: Path) -> None:
    state = StateDir(tmp_path / "state")
    state.root.mkdir(mode=0o700)
    assert state.load_snapshot() is None
    snapshot = decode(message(snapshot_frame(ingress_config())), IngressConfig)
    state.save_snapshot(snapshot.document)
    path = state.root / "snapshot.json"
    assert path.stat().st_mode & 0o777 == 0o600
    again = from_document(state.load_snapshot(), IngressConfig)
    assert (again.version, again.issued_at, again.config) == (
        snapshot.version,
        snapshot.issued_at,
        snapshot.config,
    )
    newer = decode(
        message(snapshot_frame(ingress_config(services=[]), T0 + timedelta(1))), IngressConfig
    )
    state.save_snapshot(newer.document)
    assert from_document(state.load_snapshot(), IngressConfig).config.services == ()
    assert [p.name for p in state.root.iterdir()] == ["snapshot.json"]  # no temporary left


@pytest.mark.parametrize(
    ("document", "reason"),
    [
        ([], "not a JSON object"),
        ({"version": "0" * 64}, "issued_at"),
        ({"version": "0" * 64, "issued_at": T0.isoformat(), "config": ingress_config()}, "SHA-256"),
    ],
)
def test_a_damaged_stored_snapshot_is_refused(document: object, reason: str) -> None:
    with pytest.raises(SnapshotRejected, match=reason):
        from_document(document, IngressConfig)
