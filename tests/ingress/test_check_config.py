"""`kokoa ingress check-config` for a file meant for control mode (CliRunner): the file
checked as `run --control` reads it, the state directory reported (enrollment, certificate,
stored snapshot and whether it applies), exit 1 on problems; a standalone file as before."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import yaml
from typer.testing import CliRunner, Result

from common.enroll import Subject
from ingress.cli import app as ingress_cli
from tests.common.state_support import enrolled_state, owner, store_snapshot

FILE = {
    "tunnel": {"listen": "127.0.0.1:7844"},
    "http": {"listen": "127.0.0.1:8080"},
    "admin": {"listen": "127.0.0.1:9901"},
}


def check(path: Path, *args: str) -> Result:
    return CliRunner().invoke(ingress_cli, ["check-config", str(path), *args])


def node_file(root: Path, **extra: Any) -> Path:
    path = root / "ingress.yaml"
    path.write_text(yaml.safe_dump(FILE | extra))
    return path


def node_config(subject: Subject, *hosts: str) -> dict[str, Any]:
    agent = f"{subject.org_id}/{uuid.uuid4()}"
    services = [
        {"id": str(uuid.uuid4()), "name": f"s{i}", "hosts": [host], "agents": [agent]}
        for i, host in enumerate(hosts)
    ]
    revoked = {"serials": ["1f"], "identities": []}
    return {"node": owner(subject), "services": services, "revoked": revoked}


def test_an_enrolled_node_with_its_snapshot_and_what_fails(tmp_path: Path) -> None:
    path = node_file(tmp_path)
    state, subject = enrolled_state(tmp_path / "ingress.state", "ingress", name="tokyo-1")
    result = check(path)  # found by its default state directory
    assert result.exit_code == 0, result.output
    assert "snapshot: none stored yet" in result.stdout
    version = store_snapshot(state, node_config(subject, "app.test", "api.test"))
    result = check(path, "--control", "https://control.example.com")
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert out.startswith(f"{path}: OK (control mode)")
    assert "file: valid for control mode, tunnel 127.0.0.1:7844, http 127.0.0.1:8080" in out
    assert f"enrolled as ingress 'tokyo-1' (id {subject.id}" in out and "certificate: serial" in out
    assert f"snapshot: version {version[:16]}" in out
    assert "2 service(s): s0, s1; 0 HTTPS certificate(s); 1 revoked agent certificate(s)" in out

    store_snapshot(state, node_config(subject, "app.test", "app.test"))  # one route, twice
    result = check(path)
    assert result.exit_code == 1 and "the stored snapshot does not apply" in result.stderr
    store_snapshot(state, node_config(subject, "App_Test"))
    result = check(path)
    assert result.exit_code == 1 and "services.0.hosts.0" in result.stderr
    agent_state, _ = enrolled_state(tmp_path / "agent.state", "agent")
    result = check(path, "--state-dir", str(agent_state.root))
    assert result.exit_code == 1 and "holds the enrollment of an edge agent" in result.stderr


def test_not_enrolled_yet_and_a_file_that_sets_services(tmp_path: Path) -> None:
    path = node_file(tmp_path)
    result = check(path, "--control", "https://control.example.com")
    assert result.exit_code == 0, result.output
    assert "not enrolled yet: the first start needs --token" in result.stdout
    services = [{"name": "web", "hosts": ["app.test"]}]
    result = check(node_file(tmp_path, services=services), "--state-dir", str(tmp_path / "s"))
    assert result.exit_code == 1 and "services: in control mode this comes from" in result.stderr
    result = check(node_file(tmp_path))  # no state directory, no option: standalone
    assert result.exit_code == 1 and "pass --control URL, or --state-dir DIR" in result.stderr
