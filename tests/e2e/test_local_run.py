"""The README's run command: `kokoa local up` starts everything, prints the URLs, writes
urls.json, serves the demo through every ingress node, and stops cleanly on Ctrl-C."""

from __future__ import annotations

import json
import signal
import subprocess
import time
from pathlib import Path

import psutil

from common.localrun import kokoa_command
from tests.e2e.harness import get


def test_local_up_serves_through_every_node_and_stops_on_ctrl_c(tmp_path: Path) -> None:
    state = tmp_path / "run"
    with subprocess.Popen(
        kokoa_command("local", "up", "--state-dir", str(state)),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    ) as proc:
        out, info, children = _exercise(proc, state)
    assert proc.returncode == 0, out
    for url in info["public"]:
        assert url in out
    assert "stopped." in out
    assert not any(c.is_running() and c.status() != psutil.STATUS_ZOMBIE for c in children)


def _exercise(
    proc: subprocess.Popen[str], state: Path
) -> tuple[str, dict[str, list[str]], list[psutil.Process]]:
    """Use the running system, then Ctrl-C it; returns its output, urls.json and children."""
    try:
        urls_file = state / "urls.json"
        deadline = time.monotonic() + 60
        while not urls_file.exists():
            assert proc.poll() is None, proc.stdout.read() if proc.stdout else ""
            assert time.monotonic() < deadline, "urls.json never appeared"
            time.sleep(0.2)
        info = json.loads(urls_file.read_text())
        assert len(info["public"]) == 2
        for url in info["public"]:
            # *.localhost is loopback; send the name as Host to 127.0.0.1 to avoid resolver quirks.
            host_port = url.split("//", 1)[1].rstrip("/")
            host, port = host_port.rsplit(":", 1)
            status, body = get(f"http://127.0.0.1:{port}/", headers={"Host": host})
            assert status == 200
            assert b"Kokoa" in body
        for url in info["admin"]:
            status, body = get(url)
            assert status == 200
            assert b"kokoa_ingress_requests_total" in body
        children = psutil.Process(proc.pid).children(recursive=True)
        assert len(children) >= 4  # origin, two ingress nodes, agent
        proc.send_signal(signal.SIGINT)
        out, _ = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    return out, info, children
