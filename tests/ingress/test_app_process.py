"""`kokoa ingress` as a real process: check-config, SIGHUP reload (an invalid file keeps the
running configuration), SIGTERM exits 0."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from common.localrun import free_port, kokoa_command
from tests.common.quic_support import HOST, Authority


def kokoa(*args: str) -> list[str]:
    """The installed `kokoa` console script (what `uv run kokoa` runs), else `-m common.cli`."""
    script = Path(sys.executable).parent / "kokoa"
    return [str(script), *args] if script.exists() else kokoa_command(*args)


@dataclass
class Node:
    root: Path
    config: Path
    http: int
    admin: int
    tunnel: int

    def write(self, services: list[dict[str, Any]]) -> None:
        data = {
            "node": "ingress-p",
            "tunnel": {
                "listen": f"{HOST}:{self.tunnel}",
                "cert": "ca/ingress-ingress-p.pem",
                "key": "ca/ingress-ingress-p.key",
                "ca": "ca/ca.pem",
            },
            "http": {"listen": f"{HOST}:{self.http}"},
            "admin": {"listen": f"{HOST}:{self.admin}"},
            "services": services,
            "log": {"level": "info", "format": "json"},
            "drain_grace": 3,
        }
        self.config.write_text(yaml.safe_dump(data))

    def status(self, host: str) -> int:
        return get(f"http://{HOST}:{self.http}/", host)


def get(url: str, host: str | None = None) -> int:
    request = urllib.request.Request(url, headers={"host": host} if host else {})
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return int(response.status)
    except urllib.error.HTTPError as exc:
        return exc.code


def wait_for(probe: Callable[[], bool], what: str, proc: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        assert proc.poll() is None, f"the node exited with {proc.returncode}"
        try:
            if probe():
                return
        except OSError:
            pass
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.fixture
def node(tmp_path: Path) -> Node:
    Authority(tmp_path / "ca").issue("ingress", "ingress-p")
    result = Node(
        tmp_path, tmp_path / "ingress.yaml", free_port(), free_port(), free_port(socket.SOCK_DGRAM)
    )
    result.write([{"name": "old", "hosts": ["old.test"], "agents": ["agent-1"]}])
    return result


@pytest.fixture
def running(node: Node) -> Iterator[subprocess.Popen[bytes]]:
    log = (node.root / "node.log").open("wb")
    proc = subprocess.Popen(
        kokoa("ingress", "run", "--config", str(node.config)), stdout=log, stderr=log
    )
    log.close()
    try:
        wait_for(lambda: get(f"http://{HOST}:{node.admin}/readyz") == 200, "readyz", proc)
        yield proc
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def log_text(node: Node) -> str:
    return (node.root / "node.log").read_text(errors="replace")


def test_sighup_with_an_invalid_file_keeps_the_running_configuration(
    node: Node, running: subprocess.Popen[bytes]
) -> None:
    assert (node.status("old.test"), node.status("new.test")) == (502, 404)
    node.config.write_text("node: ingress-p\nservices: [{name: new, hosts: [NEW.test]}]\n")
    running.send_signal(signal.SIGHUP)
    wait_for(lambda: "configuration reload refused" in log_text(node), "the refusal", running)
    assert "lowercase" in log_text(node)
    assert (node.status("old.test"), node.status("new.test")) == (502, 404)
    assert get(f"http://{HOST}:{node.admin}/readyz") == 200
    # A valid file is then taken.
    node.write([{"name": "new", "hosts": ["new.test"], "agents": ["agent-1"]}])
    running.send_signal(signal.SIGHUP)
    wait_for(lambda: node.status("new.test") == 502, "the new routes", running)
    assert node.status("old.test") == 404
    assert "configuration reloaded" in log_text(node)


def test_sigterm_exits_zero(node: Node, running: subprocess.Popen[bytes]) -> None:
    running.send_signal(signal.SIGTERM)
    assert running.wait(15) == 0
    text = log_text(node)
    assert "ingress node stopping" in text and "ingress node stopped" in text
    with pytest.raises(OSError):
        get(f"http://{HOST}:{node.admin}/healthz")


def test_a_port_in_use_fails_at_start(node: Node) -> None:
    with socket.create_server((HOST, node.http)):
        result = subprocess.run(
            kokoa("ingress", "run", "--config", str(node.config)),
            capture_output=True,
            text=True,
            timeout=30,
        )
    assert result.returncode == 1
    assert "cannot start" in result.stderr


def test_check_config(node: Node) -> None:
    ok = subprocess.run(
        kokoa("ingress", "check-config", str(node.config)), capture_output=True, text=True
    )
    assert ok.returncode == 0, ok.stderr
    assert "ok" in ok.stdout and "1 service(s)" in ok.stdout
    node.config.write_text(
        node.config.read_text().replace("old.test", "Old.Test").replace("ingress-p.key", "x.key")
    )
    bad = subprocess.run(
        kokoa("ingress", "check-config", str(node.config)), capture_output=True, text=True
    )
    assert bad.returncode == 1
    assert "services.0.hosts.0" in bad.stderr and "lowercase" in bad.stderr
    node.write([])
    node.config.write_text(node.config.read_text().replace("ingress-p.key", "missing.key"))
    missing = subprocess.run(
        kokoa("ingress", "check-config", str(node.config)), capture_output=True, text=True
    )
    assert missing.returncode == 1
    assert "tunnel.key" in missing.stderr and "missing.key" in missing.stderr


def test_the_cli_imports_no_web_framework() -> None:
    code = (
        "import sys, ingress.cli, ingress.app; "
        "bad = [m for m in ('fastapi', 'sqlalchemy', 'starlette') if m in sys.modules]; "
        "print(bad); sys.exit(1 if bad else 0)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
