"""`kokoa ingress`: run an ingress node, or check its configuration file.

Imports stay light at module level (no FastAPI, no SQLAlchemy, not even the node itself):
the node is imported only when `run` is invoked.
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path
from typing import Annotated

import typer

from common import logs, pki
from common.config import ConfigError
from ingress.public.tls import SniCertificates
from ingress.settings import IngressSettings, load_settings

app = typer.Typer(
    name="ingress",
    help="The ingress node: public listeners, and the QUIC listener agents dial.",
    no_args_is_help=True,
    add_completion=False,
)

ConfigOption = Annotated[
    Path, typer.Option("--config", "-c", help="The node's YAML configuration file.")
]


def file_problems(settings: IngressSettings) -> list[tuple[str, str]]:
    """(field, reason) for each certificate or key file that cannot be used."""
    problems: list[tuple[str, str]] = []
    tls = settings.tunnel.tls
    for field, check in (
        ("tunnel.cert", lambda: pki.load_certificates(tls.cert)),
        ("tunnel.key", lambda: pki.load_private_key(tls.key)),
        ("tunnel.ca", lambda: pki.load_certificates(tls.ca)),
    ):
        try:
            check()
        except pki.PkiError as exc:
            problems.append((field, str(exc)))
    if settings.https is not None:
        for index, pair in enumerate(settings.https.certificates):
            try:
                SniCertificates([(pair.cert, pair.key)])
            except (OSError, ValueError) as exc:  # ssl.SSLError is an OSError
                problems.append((f"https.certificates.{index}", f"{pair.cert}, {pair.key}: {exc}"))
    return problems


def _load(config: Path) -> IngressSettings:
    try:
        settings = load_settings(config)
    except ConfigError as exc:
        sys.stderr.write(f"{exc}\n")
        raise typer.Exit(1) from None
    problems = file_problems(settings)
    if problems:
        sys.stderr.write(str(ConfigError(str(config), problems)) + "\n")
        raise typer.Exit(1)
    return settings


@app.command("check-config")
def check_config(
    file: Annotated[Path, typer.Argument(help="The YAML configuration file to check.")],
) -> None:
    """Validate a configuration file (and that its certificates load); exit 1 if invalid."""
    settings = _load(file)
    listeners = [
        f"{name} {listener.listen}"
        for name, listener in (
            ("tunnel", settings.tunnel),
            ("http", settings.http),
            ("https", settings.https),
            ("admin", settings.admin),
        )
        if listener is not None
    ]
    typer.echo(
        f"{file}: ok — node {settings.node}, {len(settings.services)} service(s), "
        + ", ".join(listeners)
    )


@app.command()
def run(
    config: ConfigOption,
    use_uvloop: Annotated[
        bool, typer.Option("--uvloop/--no-uvloop", help="Run on uvloop's event loop.")
    ] = True,
) -> None:
    """Run the ingress node until SIGTERM or SIGINT; SIGHUP reloads the configuration."""
    settings = _load(config)
    logs.configure(settings.log.level, settings.log.format)
    from ingress.app import run as run_node  # keeps check-config light

    try:
        if use_uvloop:
            import uvloop

            uvloop.run(run_node(config, settings))
        else:
            asyncio.run(run_node(config, settings))
    except OSError as exc:
        sys.stderr.write(f"kokoa ingress: cannot start: {exc}\n")
        raise typer.Exit(1) from None
