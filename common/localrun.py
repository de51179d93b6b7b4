"""`kokoa local up`: the whole system on loopback, for a first look and for end-to-end tests.

It writes a throwaway CA and certificates, one config file per process, then starts a demo
origin, two ingress nodes and one edge agent as child processes of the `kokoa` CLI, waits until
each ingress node serves the demo through the agent, prints the URLs to open (and writes them
to `urls.json` for scripts), and stops everything on Ctrl-C.

This module only spawns `kokoa` subprocesses: it imports no other component, so `common`
still depends on nothing else.
"""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Annotated

import typer
import yaml

from common import pki

app = typer.Typer(help="Run the whole system locally on loopback.", no_args_is_help=True)


@app.callback()
def _group() -> None:
    """Run the whole system locally on loopback (`kokoa local up`)."""


DEMO_HOST = "demo.localhost"
LOOPBACK = "127.0.0.1"


def free_port(kind: int = socket.SOCK_STREAM) -> int:
    """A port that is free right now on 127.0.0.1 (TCP or UDP)."""
    with socket.socket(socket.AF_INET, kind) as sock:
        sock.bind((LOOPBACK, 0))
        port: int = sock.getsockname()[1]
        return port


def port_or_free(preferred: int, kind: int = socket.SOCK_STREAM) -> int:
    with socket.socket(socket.AF_INET, kind) as sock:
        try:
            sock.bind((LOOPBACK, preferred))
        except OSError:
            return free_port(kind)
    return preferred


@dataclass(frozen=True, slots=True)
class NodePorts:
    name: str
    tunnel: int
    http: int
    admin: int


@dataclass(frozen=True, slots=True)
class Layout:
    """Where everything lives and listens."""

    root: Path
    origin_port: int
    nodes: tuple[NodePorts, ...]
    agent: str = "agent-1"
    service: str = "demo"
    host: str = DEMO_HOST

    @classmethod
    def choose(cls, root: Path, *, nodes: int = 2, fixed: bool = True) -> Layout:
        """Default ports when free (8080, 8081…), otherwise any free ones."""
        pick = port_or_free if fixed else (lambda _p, k=socket.SOCK_STREAM: free_port(k))
        node_ports = tuple(
            NodePorts(
                name=f"ingress-{i + 1}",
                tunnel=pick(7844 + i, socket.SOCK_DGRAM),
                http=pick(8080 + i),
                admin=pick(9901 + i),
            )
            for i in range(nodes)
        )
        return cls(root=root, origin_port=pick(8000), nodes=node_ports)

    def public_url(self, node: NodePorts) -> str:
        return f"http://{self.host}:{node.http}/"


def write_pki(layout: Layout) -> None:
    """A throwaway CA, one certificate per ingress node and one for the agent."""
    pki_dir = layout.root / "pki"
    pki_dir.mkdir(parents=True, exist_ok=True)
    ca_key, ca_cert = pki.create_ca("Kokoa local CA", days=30)
    pki.write_key(pki_dir / "ca.key", ca_key)
    pki.write_certificate(pki_dir / "ca.crt", ca_cert)
    for node in layout.nodes:
        key, cert = pki.issue_certificate(
            ca_key, ca_cert, role="ingress", name=node.name, ip_addresses=[LOOPBACK], days=30
        )
        assert key is not None
        pki.write_key(pki_dir / f"{node.name}.key", key)
        pki.write_certificate(pki_dir / f"{node.name}.crt", cert)
    key, cert = pki.issue_certificate(ca_key, ca_cert, role="agent", name=layout.agent, days=30)
    assert key is not None
    pki.write_key(pki_dir / f"{layout.agent}.key", key)
    pki.write_certificate(pki_dir / f"{layout.agent}.crt", cert)


def ingress_config(layout: Layout, node: NodePorts) -> dict[str, object]:
    return {
        "node": node.name,
        "tunnel": {
            "listen": f"{LOOPBACK}:{node.tunnel}",
            "cert": f"pki/{node.name}.crt",
            "key": f"pki/{node.name}.key",
            "ca": "pki/ca.crt",
        },
        "http": {"listen": f"{LOOPBACK}:{node.http}"},
        "admin": {"listen": f"{LOOPBACK}:{node.admin}"},
        "services": [
            {
                "name": layout.service,
                "hosts": [layout.host, f"*.{layout.host}"],
                "agents": [layout.agent],
            }
        ],
        "log": {"level": "info", "format": "text"},
    }


def agent_config(layout: Layout) -> dict[str, object]:
    return {
        "agent": layout.agent,
        "tls": {
            "cert": f"pki/{layout.agent}.crt",
            "key": f"pki/{layout.agent}.key",
            "ca": "pki/ca.crt",
        },
        "ingress": [
            {"name": n.name, "address": f"{LOOPBACK}:{n.tunnel}", "server_name": LOOPBACK}
            for n in layout.nodes
        ],
        "services": [{"name": layout.service, "origin": f"http://{LOOPBACK}:{layout.origin_port}"}],
        "backoff": {"initial": 0.2, "max": 2.0},
        "log": {"level": "info", "format": "text"},
    }


def write_configs(layout: Layout) -> None:
    for node in layout.nodes:
        path = layout.root / f"{node.name}.yaml"
        path.write_text(yaml.safe_dump(ingress_config(layout, node), sort_keys=False))
    path = layout.root / f"{layout.agent}.yaml"
    path.write_text(yaml.safe_dump(agent_config(layout), sort_keys=False))


def kokoa_command(*args: str) -> list[str]:
    """The `kokoa` CLI of this very interpreter (works inside or outside the venv)."""
    return [sys.executable, "-m", "common.cli", *args]


@dataclass
class Processes:
    """Child processes we started, stopped by PID in reverse order."""

    log_dir: Path
    children: list[tuple[str, subprocess.Popen[bytes]]] = field(default_factory=list)

    def start(self, name: str, argv: Sequence[str]) -> subprocess.Popen[bytes]:
        self.log_dir.mkdir(parents=True, exist_ok=True)
        log = (self.log_dir / f"{name}.log").open("ab")
        proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, cwd=self.log_dir.parent)
        log.close()
        self.children.append((name, proc))
        return proc

    def check_alive(self) -> None:
        for name, proc in self.children:
            if proc.poll() is not None:
                raise RuntimeError(
                    f"{name} exited with code {proc.returncode}; see {self.log_dir / name}.log"
                )

    def stop(self, timeout: float = 10.0) -> None:
        for _name, proc in reversed(self.children):
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + timeout
        for _name, proc in reversed(self.children):
            try:
                proc.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        self.children.clear()


def http_get(url: str, *, host: str | None = None, timeout: float = 2.0) -> tuple[int, bytes]:
    request = urllib.request.Request(url, headers={"Host": host} if host else {})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return int(response.status), bytes(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def wait_until(
    check: str, probe: Callable[[], bool], procs: Processes, timeout: float = 30.0
) -> None:
    deadline = time.monotonic() + timeout
    while True:
        procs.check_alive()
        try:
            if probe():
                return
        except OSError:
            pass
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out waiting for {check}")
        time.sleep(0.1)


def start_all(layout: Layout, procs: Processes) -> None:
    procs.start(
        "origin",
        kokoa_command("demo", "origin", "--host", LOOPBACK, "--port", str(layout.origin_port)),
    )
    for node in layout.nodes:
        config = layout.root / f"{node.name}.yaml"
        procs.start(node.name, kokoa_command("ingress", "run", "--config", str(config)))
    config = layout.root / f"{layout.agent}.yaml"
    procs.start(layout.agent, kokoa_command("edge", "run", "--config", str(config)))


def wait_ready(layout: Layout, procs: Processes, timeout: float = 30.0) -> None:
    """Every ingress node answers the demo service through the agent."""
    for node in layout.nodes:
        url = f"http://{LOOPBACK}:{node.http}/"

        def serves(url: str = url) -> bool:
            return http_get(url, host=layout.host)[0] == 200

        wait_until(f"{node.name} to serve {layout.host}", serves, procs, timeout)


def urls(layout: Layout) -> dict[str, object]:
    return {
        "service": layout.service,
        "public": [layout.public_url(n) for n in layout.nodes],
        "admin": [f"http://{LOOPBACK}:{n.admin}/metrics" for n in layout.nodes],
        "origin": f"http://{LOOPBACK}:{layout.origin_port}/",
        "layout": asdict(layout) | {"root": str(layout.root)},
    }


@contextmanager
def running(layout: Layout, *, timeout: float = 30.0) -> Iterator[Processes]:
    """Write PKI and configs, start every process, wait until ready; stop all on exit."""
    layout.root.mkdir(parents=True, exist_ok=True)
    write_pki(layout)
    write_configs(layout)
    procs = Processes(layout.root / "logs")
    try:
        start_all(layout, procs)
        wait_ready(layout, procs, timeout)
        yield procs
    finally:
        procs.stop()


@app.command()
def up(
    state_dir: Annotated[
        Path, typer.Option(help="Where certificates, configs and logs go.")
    ] = Path(".kokoa-run"),
    nodes: Annotated[int, typer.Option(min=1, max=8, help="How many ingress nodes.")] = 2,
) -> None:
    """Start a demo origin, ingress nodes and an edge agent; print the URLs; Ctrl-C stops all."""
    layout = Layout.choose(state_dir.resolve(), nodes=nodes)
    typer.echo(f"starting Kokoa locally in {layout.root} (logs in {layout.root / 'logs'}) …")
    try:
        with running(layout) as procs:
            info = urls(layout)
            (layout.root / "urls.json").write_text(json.dumps(info, indent=2) + "\n")
            typer.echo("\nKokoa is up. Open:")
            for node in layout.nodes:
                typer.echo(f"  {layout.public_url(node)}   (through {node.name})")
            typer.echo("Metrics:")
            for node in layout.nodes:
                typer.echo(f"  http://{LOOPBACK}:{node.admin}/metrics")
            typer.echo(f"(URLs also in {layout.root / 'urls.json'}; Ctrl-C stops everything)")
            _wait_for_interrupt(procs)
    except (RuntimeError, TimeoutError) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from None
    typer.echo("stopped.")


def _wait_for_interrupt(procs: Processes) -> None:
    stop = False

    def on_signal(_signum: int, _frame: object) -> None:
        nonlocal stop
        stop = True

    signal.signal(signal.SIGTERM, on_signal)
    try:
        while not stop:
            procs.check_alive()
            time.sleep(0.5)
    except KeyboardInterrupt:
        pass
