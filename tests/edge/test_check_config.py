"""`kokoa edge check-config` for a file meant for control mode (CliRunner): the file checked
as `run --control` reads it, and the state directory reported — enrollment, certificate and
expiry, the stored snapshot and whether it applies; exit 1 on each kind of problem."""

from __future__ import annotations

import json
import uuid
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner, Result

from common.enroll import StateDir, Subject
from edge.cli import app as edge_cli
from tests.common.state_support import enrolled_state, owner, store_snapshot

FILE = {"heartbeat_interval": 1.0, "backoff": {"initial": 0.1, "max": 1.0}}


def check(path: Path, *args: str) -> Result:
    return CliRunner().invoke(edge_cli, ["check-config", str(path), *args])


def agent_file(root: Path, **extra: Any) -> Path:
    path = root / "agent.yaml"
    path.write_text(yaml.safe_dump(FILE | extra))
    return path


def agent_config(subject: Subject, origin: str = "http://127.0.0.1:8080") -> dict[str, Any]:
    node = {"id": str(uuid.uuid4()), "name": "n1", "address": "127.0.0.1:7844"}
    service = {"id": str(uuid.uuid4()), "name": "web", "origin": origin}
    return {
        "agent": owner(subject),
        "ingress": [node | {"server_name": None}],
        "services": [service],
    }


@pytest.fixture
def enrolled(tmp_path: Path) -> tuple[Path, StateDir, Subject]:
    """agent.yaml with its default state directory (agent.state) enrolled."""
    state, subject = enrolled_state(tmp_path / "agent.state", "agent", name="web-1")
    return agent_file(tmp_path), state, subject


def test_an_enrolled_agent_with_its_snapshot(enrolled: tuple[Path, StateDir, Subject]) -> None:
    path, state, subject = enrolled
    version = store_snapshot(state, agent_config(subject))
    result = check(path)  # found by its default state directory: no option needed
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert out.startswith(f"{path}: OK (control mode)")
    assert f"enrolled as agent 'web-1' (id {subject.id}, org {subject.org_id})" in out
    cert = state.certificate()
    assert f"certificate: serial {cert.serial_number:x}, expires " in out and "(in 7.0 days)" in out
    assert f"snapshot: version {version[:16]}" in out
    assert "ingress: n1 (127.0.0.1:7844)" in out and "services: web -> http://127.0.0.1:8080" in out


def test_not_enrolled_yet_and_no_snapshot(tmp_path: Path) -> None:
    path = agent_file(tmp_path)
    result = check(path, "--control", "https://control.example.com")
    assert result.exit_code == 0, result.output
    assert "not enrolled yet: the first start needs --token" in result.stdout
    assert "file: valid for control mode" in result.stdout
    enrolled_state(tmp_path / "agent.state", "agent")
    result = check(path)
    assert result.exit_code == 0 and "snapshot: none stored yet" in result.stdout


def damage(state: StateDir, subject: Subject, how: str) -> str:
    """Break the state directory in one way; the problem check-config must name."""
    if how == "origin":
        store_snapshot(state, agent_config(subject, origin="ftp://127.0.0.1"))
        return "the stored snapshot does not apply: services.0.origin"
    if how == "version":
        store_snapshot(state, agent_config(subject))
        document = json.loads(state.snapshot_path.read_text())
        document["config"]["services"][0]["origin"] = "http://203.0.113.9:80"
        state.snapshot_path.write_text(json.dumps(document))
        return "is not valid: the version is not the SHA-256 of the config"
    if how == "json":
        state.snapshot_path.write_text("{not json")
        return "snapshot.json cannot be read"
    if how == "other agent":
        store_snapshot(
            state, agent_config(subject) | {"agent": owner(subject) | {"id": str(uuid.uuid4())}}
        )
        return "the stored snapshot is for another agent"
    if how == "key":
        enrolled_state(state.root.parent / "x", "agent")[0].tls.key.replace(state.tls.key)
        return "does not belong to the key"
    raise AssertionError(how)


@pytest.mark.parametrize("how", ["origin", "version", "json", "other agent", "key"])
def test_a_problem_in_the_state_directory_fails_the_check(
    enrolled: tuple[Path, StateDir, Subject], how: str
) -> None:
    path, state, subject = enrolled
    expected = damage(state, subject, how)
    result = check(path)
    assert result.exit_code == 1
    assert result.stdout.startswith(f"{path}: NOT OK (control mode)")
    assert expected in result.stderr, result.stderr


def test_problems_of_the_file_the_options_and_the_certificate(tmp_path: Path) -> None:
    path = agent_file(tmp_path, services=[{"name": "web", "origin": "http://127.0.0.1:80"}])
    result = check(path, "--state-dir", str(tmp_path / "empty"))
    assert result.exit_code == 1 and "services: in control mode this comes from" in result.stderr
    path = agent_file(tmp_path)
    result = check(path, "--control", "http://192.0.2.1:8443")
    assert result.exit_code == 1 and "plain http is accepted only" in result.stderr
    enrolled_state(tmp_path / "agent.state", "agent", lifetime=timedelta(milliseconds=1))
    result = check(path)
    assert result.exit_code == 1
    assert "expired at" in result.stderr and "new --token" in result.stderr
    enrolled_state(tmp_path / "node.state", "ingress")
    result = check(path, "--state-dir", str(tmp_path / "node.state"))
    assert result.exit_code == 1 and "holds the enrollment of an ingress node" in result.stderr


def test_a_standalone_file_is_checked_as_before_with_a_hint(tmp_path: Path) -> None:
    result = check(agent_file(tmp_path))  # no state directory: standalone, which needs more
    assert result.exit_code == 1
    assert "agent" in result.output and "pass --control URL, or --state-dir DIR" in result.output
