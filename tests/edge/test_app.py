"""`kokoa edge run` as a real process against a fake ingress node (real QUIC) and the demo
origin: graceful stop on SIGTERM with a request in flight, reload on SIGHUP (an invalid file
keeps the running configuration), reload on file change; `kokoa edge check-config`; and the
imports the agent must never pull in."""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from common.wire import Drain, ErrorCode, Services
from edge.cli import app as edge_cli
from edge.demo_server import RunningOrigin, running
from tests.edge.agent_support import Pki, make_pki, until
from tests.edge.fake_ingress import FakeIngress, get

ROOT = Path(__file__).parents[2]


@pytest.fixture
def pki(tmp_path: Path) -> Pki:
    return make_pki(tmp_path / "pki")


@pytest.fixture
async def node(pki: Pki) -> AsyncIterator[FakeIngress]:
    async with FakeIngress(pki.ingress, heartbeat_interval=0.5) as fake:
        yield fake


@pytest.fixture
async def demo() -> AsyncIterator[RunningOrigin]:
    async with running() as origin:
        yield origin


def config(port: int, origin: str, **extra: Any) -> dict[str, Any]:
    """An agent configuration with paths relative to its file (the test's tmp_path)."""
    return {
        "agent": "agent-1",
        "tls": {
            "cert": "pki/agent-agent-1.pem",
            "key": "pki/agent-agent-1.key",
            "ca": "pki/ca.pem",
        },
        "ingress": [{"name": "ingress-1", "address": f"127.0.0.1:{port}"}],
        "services": [{"name": "web", "origin": origin}],
        "heartbeat_interval": 0.5,
        "backoff": {"initial": 0.1, "max": 0.5},
        "drain_grace": 5,
        "log": {"level": "info", "format": "json"},
        **extra,
    }


def write(path: Path, data: object) -> Path:
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


class Agent:
    """A `kokoa edge run` child process, its log in a file; stopped by PID."""

    def __init__(self, conf: Path, *args: str) -> None:
        self.log_path = conf.with_suffix(".log")
        argv = [sys.executable, "-m", "common.cli", "edge", "run", "--config", str(conf), *args]
        with self.log_path.open("wb") as log:
            # cwd elsewhere: relative paths must resolve against the file, not the cwd
            self.proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, cwd="/")

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def records(self) -> Iterator[dict[str, Any]]:
        for line in self.log().splitlines():
            if line.startswith("{"):
                yield json.loads(line)

    def logged(self, msg: str) -> bool:
        return any(record.get("msg") == msg for record in self.records())

    async def wait(self, within: float = 15.0) -> int:
        return await asyncio.wait_for(asyncio.to_thread(self.proc.wait), within)

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


@pytest.fixture
def agents() -> Iterator[list[Agent]]:
    started: list[Agent] = []
    yield started
    for agent in started:
        agent.kill()


async def test_sigterm_drains_and_finishes_the_request_in_flight(
    tmp_path: Path, node: FakeIngress, demo: RunningOrigin, agents: list[Agent]
) -> None:
    agent = Agent(write(tmp_path / "agent.yaml", config(node.port, demo.url)))
    agents.append(agent)
    session = await node.session(within=30)
    async with asyncio.timeout(20), asyncio.TaskGroup() as group:
        in_flight = group.create_task(session.request(get("/slow?delay=1.0")))
        await asyncio.sleep(0.3)  # the agent has it and is waiting for the origin
        agent.proc.send_signal(signal.SIGTERM)
        assert await session.wait_for(Drain) == Drain("agent shutting down")
        late = await session.request(get("/"))
        response = await in_flight
    assert late.reset == ErrorCode.DRAINING
    assert response.head is not None and response.head.status == 200
    assert await agent.wait() == 0
    closed = await session.wait_closed()
    assert closed.code == ErrorCode.NO_ERROR
    assert agent.logged("edge agent stopped")


async def test_sighup_with_an_invalid_file_keeps_the_running_configuration(
    tmp_path: Path, node: FakeIngress, demo: RunningOrigin, agents: list[Agent]
) -> None:
    conf = write(tmp_path / "agent.yaml", config(node.port, demo.url))
    agent = Agent(conf)
    agents.append(agent)
    session = await node.session(within=30)
    write(conf, config(node.port, demo.url, max_streams=-1))
    agent.proc.send_signal(signal.SIGHUP)
    await until(lambda: agent.logged("reload refused; keeping the running configuration"))
    refused = next(r for r in agent.records() if r["msg"].startswith("reload refused"))
    assert any(p.startswith("max_streams:") for p in refused["problems"])
    response = await session.request(get("/"))
    assert response.head is not None and response.head.status == 200
    assert len(node.sessions) == 1 and session.closed is None
    # A valid file with one more service: claimed on the live connection.
    more = config(node.port, demo.url)
    more["services"].append({"name": "api", "origin": demo.url})
    write(conf, more)
    agent.proc.send_signal(signal.SIGHUP)
    assert await session.wait_for(Services) == Services(("web", "api"))
    agent.proc.send_signal(signal.SIGTERM)
    assert await agent.wait() == 0


async def test_a_changed_file_is_reloaded_with_watch(
    tmp_path: Path, node: FakeIngress, demo: RunningOrigin, agents: list[Agent]
) -> None:
    conf = write(tmp_path / "agent.yaml", config(node.port, demo.url))
    agent = Agent(conf, "--watch", "0.2")
    agents.append(agent)
    session = await node.session(within=30)
    more = config(node.port, demo.url)
    more["services"].append({"name": "api", "origin": demo.url})
    write(conf, more)
    assert await session.wait_for(Services) == Services(("web", "api"))
    agent.proc.send_signal(signal.SIGUSR1)  # one status line per node
    await until(lambda: agent.logged("node status"))
    status = next(r for r in agent.records() if r["msg"] == "node status")
    assert status["node"] == "ingress-1" and status["state"] == "connected"
    assert status["accepted"] == ["web", "api"] and 0 < status["rtt"] < 1
    agent.proc.send_signal(signal.SIGINT)
    assert await agent.wait() == 0


async def test_a_second_stop_signal_does_not_wait_for_the_grace(
    tmp_path: Path, node: FakeIngress, demo: RunningOrigin, agents: list[Agent]
) -> None:
    agent = Agent(write(tmp_path / "agent.yaml", config(node.port, demo.url, drain_grace=60)))
    agents.append(agent)
    session = await node.session(within=30)
    async with asyncio.timeout(20), asyncio.TaskGroup() as group:
        in_flight = group.create_task(session.request(get("/slow?delay=30")))
        await asyncio.sleep(0.3)
        agent.proc.send_signal(signal.SIGTERM)
        await session.wait_for(Drain)
        loop = asyncio.get_running_loop()
        forced = loop.time()
        agent.proc.send_signal(signal.SIGTERM)
        assert await agent.wait() == 0
        assert loop.time() - forced < 5
        cut = await in_flight
    assert cut.head is None
    assert (await session.wait_closed()).code == ErrorCode.SHUTDOWN


def test_run_with_an_invalid_file_exits_1_naming_the_field(tmp_path: Path) -> None:
    conf = write(tmp_path / "agent.yaml", config(7844, "http://127.0.0.1:1", drain_grace=0))
    argv = [sys.executable, "-m", "common.cli", "edge", "run", "--config", str(conf)]
    done = subprocess.run(argv, capture_output=True, timeout=30, cwd=ROOT)
    assert done.returncode == 1
    assert b"drain_grace" in done.stderr


# ---- check-config -------------------------------------------------------------------------


def test_check_config_accepts_a_good_file(tmp_path: Path, pki: Pki) -> None:
    conf = write(tmp_path / "agent.yaml", config(7844, "http://127.0.0.1:8000"))
    result = CliRunner().invoke(edge_cli, ["check-config", str(conf)])
    assert result.exit_code == 0, result.output
    assert "agent: agent-1" in result.output and "web -> http://127.0.0.1:8000" in result.output


def test_check_config_names_the_field_of_a_bad_value(tmp_path: Path, pki: Pki) -> None:
    conf = write(tmp_path / "agent.yaml", config(7844, "ftp://x"))
    result = CliRunner().invoke(edge_cli, ["check-config", str(conf)])
    assert result.exit_code == 1
    assert "services.0.origin" in result.output


def test_check_config_refuses_a_certificate_of_another_agent(tmp_path: Path, pki: Pki) -> None:
    conf = write(tmp_path / "agent.yaml", config(7844, "http://127.0.0.1:8000", agent="agent-2"))
    result = CliRunner().invoke(edge_cli, ["check-config", str(conf)])
    assert result.exit_code == 1
    assert "tls.cert" in result.output and "'agent-2'" in result.output


# ---- imports ------------------------------------------------------------------------------

FORBIDDEN = ("fastapi", "starlette", "sqlalchemy", "alembic", "uvicorn", "control", "ingress")


def test_the_agent_never_imports_the_control_plane_or_the_ingress() -> None:
    code = (
        "import sys, edge.cli, edge.app; "
        f"print(sorted({{m.split('.')[0] for m in sys.modules}} & set({FORBIDDEN!r})))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, timeout=60, cwd=ROOT, check=True
    )
    assert done.stdout.strip() == b"[]", done.stdout
