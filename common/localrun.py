"""`kokoa local up`: the whole system on loopback, for a first look and for end-to-end tests.

It starts a demo origin and a control plane (SQLite in the run directory), creates the first
admin with a random password, registers two ingress nodes, one edge agent and the demo service
through the REST API, starts the nodes and the agent enrolled with one-time tokens, waits until
each node serves the demo through the agent, prints the URLs (and the admin's password, once),
writes them to `urls.json` for scripts, and stops everything on Ctrl-C. `--standalone` runs the
data plane alone, on a throwaway CA and files, as before the control plane existed.

Only `kokoa` subprocesses and HTTP: common/ still imports no other package.
"""

from __future__ import annotations

import fcntl
import json
import shutil
import signal
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Annotated

import typer
import yaml

from common import pki
from common.localrun_control import (
    Admin,
    AdminSession,
    ControlPlane,
    Registration,
    create_admin,
    register,
    serve,
    set_readiness_checks,
    start_enrolled,
    write_settings,
)
from common.localrun_layout import DEMO_HOST, Layout, NodePorts
from common.localrun_procs import (
    LOOPBACK,
    Processes,
    free_port,
    http_get,
    kokoa_command,
    port_or_free,
    wait_until,
)

# Tests and bench/ import these from here.
__all__ = [
    "DEMO_HOST",
    "LOOPBACK",
    "Layout",
    "NodePorts",
    "Processes",
    "agent_config",
    "app",
    "free_port",
    "http_get",
    "ingress_config",
    "kokoa_command",
    "port_or_free",
    "running",
    "urls",
    "wait_until",
    "write_configs",
    "write_pki",
]

app = typer.Typer(help="Run the whole system locally on loopback.", no_args_is_help=True)


@app.callback()
def _group() -> None:
    """Run the whole system locally on loopback (`kokoa local up`)."""


# ---- standalone: a throwaway CA and files (--standalone, bench/) -----------------------------


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
            {
                "name": n.name,
                "address": f"{LOOPBACK}:{n.tunnel}",
                "server_name": LOOPBACK,
                "identity": pki.identity_uri("ingress", n.name),  # both nodes share 127.0.0.1
            }
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


def start_standalone(layout: Layout, procs: Processes) -> None:
    write_pki(layout)
    write_configs(layout)
    for node in layout.nodes:
        config = layout.root / f"{node.name}.yaml"
        procs.start(node.name, kokoa_command("ingress", "run", "--config", str(config)))
    config = layout.root / f"{layout.agent}.yaml"
    procs.start(layout.agent, kokoa_command("edge", "run", "--config", str(config)))


# ---- the run ---------------------------------------------------------------------------------

# What a run writes in its directory, removed at the next start (nothing else is touched).
OWNED = ("control", "logs", "pki", "urls.json", "ingress-*.*", "agent-*.*")


@contextmanager
def exclusive(root: Path) -> Iterator[None]:
    """Hold the run directory alone, and clear what an earlier run left in it."""
    root.mkdir(parents=True, exist_ok=True)
    with (root / ".lock").open("w") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise RuntimeError(f"another `kokoa local up` is running in {root}") from None
        for pattern in OWNED:
            for path in root.glob(pattern):
                if path.is_dir() and not path.is_symlink():
                    shutil.rmtree(path)
                else:
                    path.unlink()
        yield


@dataclass(frozen=True, slots=True)
class Controlled:
    """The control plane of a run and what was registered in it."""

    plane: ControlPlane
    admin: Admin
    registration: Registration


@dataclass(frozen=True, slots=True)
class Run:
    procs: Processes
    control: Controlled | None  # None: --standalone


def wait_ready(layout: Layout, procs: Processes, timeout: float = 30.0) -> None:
    """Every ingress node answers the demo service through the agent."""
    for node in layout.nodes:
        url = f"http://{LOOPBACK}:{node.http}/"

        def serves(url: str = url) -> bool:
            return http_get(url, host=layout.host)[0] == 200

        wait_until(f"{node.name} to serve {layout.host}", serves, procs, timeout)


def start_controlled(layout: Layout, procs: Processes, timeout: float) -> Controlled:
    """Control plane, admin, registration, enrolled processes; ready when it returns."""
    plane = ControlPlane(layout)
    write_settings(plane)
    typer.echo("  control plane: creating the database and the first admin …")
    admin = create_admin(plane)
    typer.echo(f"  control plane: starting on {plane.url}/ …")
    serve(plane, procs, timeout=60.0)
    with AdminSession.login(plane.dial, admin) as api:
        registration = register(api, layout)
        typer.echo(
            f"  registered {len(layout.nodes)} ingress nodes, {layout.agent} and the "
            f"{layout.service} service; starting them with enrollment tokens …"
        )
        start_enrolled(layout, plane, registration, procs)
        wait_ready(layout, procs, timeout)
        set_readiness_checks(api, layout, registration)
    return Controlled(plane, admin, registration)


@contextmanager
def running(layout: Layout, *, standalone: bool = False, timeout: float = 30.0) -> Iterator[Run]:
    """Start every process and wait until each node serves the demo; stop all on exit."""
    with ExitStack() as stack:
        stack.enter_context(exclusive(layout.root))
        procs = Processes(layout.root / "logs")
        stack.callback(procs.stop)
        origin = ("demo", "origin", "--host", LOOPBACK, "--port", str(layout.origin_port))
        procs.start("origin", kokoa_command(*origin))
        control = None
        if standalone:
            start_standalone(layout, procs)
            wait_ready(layout, procs, timeout)
        else:
            control = start_controlled(layout, procs, timeout)
        yield Run(procs, control)


def urls(layout: Layout, control: Controlled | None = None) -> dict[str, object]:
    """What urls.json holds (never the password)."""
    info: dict[str, object] = {
        "service": layout.service,
        "public": [layout.public_url(n) for n in layout.nodes],
        "metrics": [layout.metrics_url(n) for n in layout.nodes],
        "origin": f"{layout.origin}/",
        "control": None,
    }
    if control is not None:
        plane, reg = control.plane, control.registration
        info["control"] = {
            "url": f"{plane.url}/",
            "api": f"{plane.url}/api/v1",
            "api_docs": f"{plane.url}/api/docs",
            "email": control.admin.email,
            "org_id": reg.org_id,
            "nodes": reg.node_ids,
            "agents": {layout.agent: reg.agent_id},
            "services": {layout.service: reg.service_id},
            "settings": str(plane.settings_file),
        }
    return info | {"layout": asdict(layout) | {"root": str(layout.root)}}


def report(layout: Layout, run: Run, seconds: float) -> None:
    typer.echo(f"\nKokoa is up ({seconds:.1f} s). Open:")
    for node in layout.nodes:
        typer.echo(f"  {layout.public_url(node)}   (through {node.name})")
    if run.control is not None:
        admin = run.control.admin
        typer.echo("Control plane (web app and API); the password is shown only here:")
        typer.echo(f"  {run.control.plane.url}/")
        typer.echo(f"  e-mail:    {admin.email}")
        typer.echo(f"  password:  {admin.password}")
    typer.echo("Metrics:")
    for node in layout.nodes:
        typer.echo(f"  {layout.metrics_url(node)}")
    typer.echo(f"(URLs also in {layout.root / 'urls.json'}; Ctrl-C stops everything)")


@app.command()
def up(
    state_dir: Annotated[
        Path, typer.Option(help="Where the database, certificates, configs and logs go.")
    ] = Path(".kokoa-run"),
    nodes: Annotated[int, typer.Option(min=1, max=8, help="How many ingress nodes.")] = 2,
    standalone: Annotated[
        bool, typer.Option(help="No control plane: a throwaway CA and config files.")
    ] = False,
) -> None:
    """Start a demo origin, a control plane, ingress nodes and an edge agent; print the URLs;
    Ctrl-C stops all."""
    signal.signal(signal.SIGTERM, signal.default_int_handler)  # SIGTERM stops like Ctrl-C
    started = time.monotonic()
    layout = Layout.choose(state_dir.resolve(), nodes=nodes)
    if standalone:
        layout = Layout(layout.root, layout.origin_port, layout.nodes)
    typer.echo(f"starting Kokoa locally in {layout.root} (logs in {layout.root / 'logs'}) …")
    try:
        with running(layout, standalone=standalone) as run:
            info = urls(layout, run.control)
            (layout.root / "urls.json").write_text(json.dumps(info, indent=2) + "\n")
            report(layout, run, time.monotonic() - started)
            _wait_for_interrupt(run.procs)
    except (RuntimeError, TimeoutError) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from None
    except KeyboardInterrupt:
        pass
    typer.echo("stopped.")


def _wait_for_interrupt(procs: Processes) -> None:
    """Until Ctrl-C or SIGTERM (KeyboardInterrupt); a child that exits is an error."""
    while True:
        procs.check_alive()
        time.sleep(0.5)
