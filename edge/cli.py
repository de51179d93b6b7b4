"""`kokoa edge …`: run the edge agent, or check its configuration file.

Kept light on purpose: `kokoa edge --help` imports Typer and nothing else of ours; `run`
imports the agent (never FastAPI or SQLAlchemy: tests/edge/test_app_imports.py checks).
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, NoReturn

import typer

if TYPE_CHECKING:
    from common.enroll import Started

app = typer.Typer(help="The edge agent: dials every ingress node, serves your origins.")

ConfigFile = Annotated[
    Path,
    typer.Option("--config", "-c", help="The agent's YAML configuration file.", dir_okay=False),
]


ControlOption = Annotated[
    str | None,
    typer.Option(
        "--control",
        metavar="URL",
        help="Enroll with (and renew from) this control plane; without it the agent runs "
        "standalone on its file's certificates (docs/enrollment.md).",
    ),
]
TokenOption = Annotated[
    str | None,
    typer.Option(
        "--token",
        envvar="KOKOA_ENROLLMENT_TOKEN",
        help=(
            "One-time enrollment token: for the first start, or a new one to enroll again "
            "(the one this state directory last used is ignored)."
        ),
    ),
]
ControlCaOption = Annotated[
    Path | None,
    typer.Option(
        "--control-ca",
        metavar="FILE",
        help="Trust only this CA for the control plane's HTTPS (default: the system's).",
    ),
]
StateDirOption = Annotated[
    Path | None,
    typer.Option(
        "--state-dir", help="Where the key and certificates live (default: CONFIG.state)."
    ),
]


@app.callback(no_args_is_help=True)
def _group() -> None:
    """The edge agent: dials every ingress node, serves your origins."""


@app.command()
def run(
    config: ConfigFile,
    uvloop: Annotated[
        bool, typer.Option("--uvloop/--no-uvloop", help="Run on uvloop (faster; the default).")
    ] = True,
    watch: Annotated[
        float | None,
        typer.Option(help="Also reload when the file changes, checking every N seconds.", min=0.1),
    ] = None,
    control: ControlOption = None,
    token: TokenOption = None,
    control_ca: ControlCaOption = None,
    state_dir: StateDirOption = None,
) -> None:
    """Run the agent until SIGTERM/SIGINT (drains first); SIGHUP reloads the file.

    With --control the agent's identity and certificate come from the control plane (enrolled
    with --token on the first start, renewed in the background), and so do the ingress nodes
    it dials and the services it serves (snapshots over the control channel, stored in the
    state directory); the rest of the configuration comes from the file, which must not set
    `ingress` or `services`.
    """
    from common import collector
    from common.config import ConfigError
    from edge.app import EdgeApp, load_checked

    started = None
    if control is not None:
        started = _enroll(config, control, token, control_ca, state_dir)
    elif token or control_ca or state_dir:
        _fail("kokoa edge: --token, --control-ca and --state-dir need --control", code=2)
    overlay = _overlay(started) if started else None
    try:
        settings = load_checked(config, overlay, controlled=started is not None)
    except ConfigError as exc:
        _fail(str(exc))
    agent = EdgeApp(
        config, settings, agent_version=_version(), watch=watch, overlay=overlay, control=started
    )
    collector.tune()
    with asyncio.Runner(loop_factory=_loop_factory(uvloop)) as runner:
        code = runner.run(agent.run())
    raise typer.Exit(code)


@app.command("check-config")
def check_config(
    file: Annotated[Path, typer.Argument(help="The configuration file to check.", dir_okay=False)],
    control: ControlOption = None,
    state_dir: StateDirOption = None,
) -> None:
    """Validate a configuration file and the certificates it names; exit 1 if it will not do.

    A file for control mode (with --control URL or --state-dir, or when the file's default
    state directory holds an enrollment) is validated as `run --control` reads it, and the
    state directory is reported: enrollment, certificate and expiry, the stored snapshot (its
    version, and whether it applies to this file).
    """
    from common.channel.check import controlled_root
    from common.config import ConfigError
    from edge.app import load_checked

    root = controlled_root(file, control, state_dir)
    if root is not None:
        _check_controlled(file, control, root)
    try:
        settings = load_checked(file)
    except ConfigError as exc:
        _fail(f"{exc}\n(a file for control mode: pass --control URL, or --state-dir DIR)")
    nodes = ", ".join(f"{n.name} ({n.address})" for n in settings.ingress)
    services = ", ".join(f"{s.name} -> {s.origin}" for s in settings.services)
    typer.echo(f"{file}: OK\n  agent: {settings.agent}\n  ingress: {nodes}\n  services: {services}")


def _check_controlled(file: Path, control: str | None, root: Path) -> NoReturn:
    """`check-config` in control mode: the file, the state directory, the stored snapshot."""
    from common.channel import AgentConfig
    from common.channel.check import Checker, check_controlled, echo_and_exit
    from edge import controlled
    from edge.settings import ControlledEdgeSettings, check_files, load_settings

    def load(path: Path, overlay: dict[str, object]) -> ControlledEdgeSettings:
        settings = load_settings(path, overlay, controlled=True)
        assert isinstance(settings, ControlledEdgeSettings)
        return settings

    def apply(settings: ControlledEdgeSettings, config: AgentConfig) -> list[str]:
        applied = controlled.settings_for(settings, config)
        nodes = ", ".join(f"{n.name} ({n.address})" for n in applied.ingress) or "none"
        services = ", ".join(f"{s.name} -> {s.origin}" for s in applied.services) or "none"
        return [f"ingress: {nodes}", f"services: {services}"]

    checker: Checker[AgentConfig, ControlledEdgeSettings] = Checker(
        "agent", AgentConfig, "agent", "tls", lambda enrollment: str(enrollment.subject.id),
        load, lambda settings, enrolled: check_files(settings) if enrolled else [],
        lambda _: "file: valid for control mode (nodes and services: from the snapshots)",
        apply,
    )  # fmt: skip
    echo_and_exit(check_controlled(checker, file, control, root))


def _fail(message: str, code: int = 1) -> NoReturn:
    typer.echo(message, err=True)
    raise typer.Exit(code)


def _enroll(
    config: Path, url: str, token: str | None, ca_file: Path | None, state_dir: Path | None
) -> Started:
    from common.enroll import ControlOptions, EnrollError, default_state_dir, start
    from common.pki import PkiError

    options = ControlOptions(url, state_dir or default_state_dir(config), token, ca_file)
    try:
        return start(options, "agent")
    except (EnrollError, PkiError, OSError) as exc:
        _fail(f"kokoa edge: enrollment failed: {exc}")


def _overlay(started: Started) -> dict[str, object]:
    """What the enrollment decides in the configuration: the agent's id and its TLS files."""
    tls = started.state.tls
    files = {"cert": str(tls.cert), "key": str(tls.key), "ca": str(tls.ca)}
    return {"agent": str(started.enrollment.subject.id), "tls": files}


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("kokoa")
    except PackageNotFoundError:
        return "unknown"


def _loop_factory(use_uvloop: bool) -> Callable[[], asyncio.AbstractEventLoop] | None:
    if not use_uvloop:
        return None
    try:
        import uvloop
    except ImportError:
        sys.stderr.write("uvloop is not installed; running on asyncio's loop\n")
        return None
    factory: Callable[[], asyncio.AbstractEventLoop] = uvloop.new_event_loop
    return factory
