"""`kokoa edge …`: run the edge agent, or check its configuration file.

Kept light on purpose: `kokoa edge --help` imports Typer and nothing else of ours; `run`
imports the agent (never FastAPI or SQLAlchemy: tests/edge/test_app_imports.py checks).
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, NoReturn

import typer

app = typer.Typer(help="The edge agent: dials every ingress node, serves your origins.")

ConfigFile = Annotated[
    Path,
    typer.Option("--config", "-c", help="The agent's YAML configuration file.", dir_okay=False),
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
) -> None:
    """Run the agent until SIGTERM/SIGINT (drains first); SIGHUP reloads the file."""
    from common.config import ConfigError
    from edge.app import EdgeApp, load_checked

    try:
        settings = load_checked(config)
    except ConfigError as exc:
        _fail(str(exc))
    agent = EdgeApp(config, settings, agent_version=_version(), watch=watch)
    with asyncio.Runner(loop_factory=_loop_factory(uvloop)) as runner:
        code = runner.run(agent.run())
    raise typer.Exit(code)


@app.command("check-config")
def check_config(
    file: Annotated[Path, typer.Argument(help="The configuration file to check.", dir_okay=False)],
) -> None:
    """Validate a configuration file and the certificates it names; exit 1 if it will not do."""
    from common.config import ConfigError
    from edge.app import load_checked

    try:
        settings = load_checked(file)
    except ConfigError as exc:
        _fail(str(exc))
    nodes = ", ".join(f"{n.name} ({n.address})" for n in settings.ingress)
    services = ", ".join(f"{s.name} -> {s.origin}" for s in settings.services)
    typer.echo(f"{file}: OK\n  agent: {settings.agent}\n  ingress: {nodes}\n  services: {services}")


def _fail(message: str) -> NoReturn:
    typer.echo(message, err=True)
    raise typer.Exit(1)


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
