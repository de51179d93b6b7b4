"""`kokoa ingress`: run an ingress node, or check its configuration file.

Imports stay light at module level (no FastAPI, no SQLAlchemy, not even the node itself):
the node is imported only when `run` is invoked.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, NoReturn

import typer

from common import collector, logs, pki
from common.config import ConfigError
from ingress.public.tls import SniCertificates
from ingress.settings import IngressSettings, load_settings

if TYPE_CHECKING:
    from common.enroll import Started

app = typer.Typer(
    name="ingress",
    help="The ingress node: public listeners, and the QUIC listener agents dial.",
    no_args_is_help=True,
    add_completion=False,
)

ConfigOption = Annotated[
    Path, typer.Option("--config", "-c", help="The node's YAML configuration file.")
]
ControlOption = Annotated[
    str | None,
    typer.Option(
        "--control",
        metavar="URL",
        help="Enroll with (and renew from) this control plane; without it the node runs "
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


def _load(
    config: Path, overlay: Mapping[str, object] | None = None, *, controlled: bool = False
) -> IngressSettings:
    try:
        settings = load_settings(config, overlay, controlled=controlled)
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
    control: ControlOption = None,
    state_dir: StateDirOption = None,
) -> None:
    """Validate a configuration file (and that its certificates load); exit 1 if invalid.

    A file for control mode (with --control URL or --state-dir, or when the file's default
    state directory holds an enrollment) is validated as `run --control` reads it, and the
    state directory is reported: enrollment, certificate and expiry, the stored snapshot (its
    version, and whether it applies to this file).
    """
    from common.channel.check import controlled_root

    root = controlled_root(file, control, state_dir)
    if root is not None:
        _check_controlled(file, control, root)
    try:
        settings = load_settings(file)
    except ConfigError as exc:
        sys.stderr.write(
            f"{exc}\n(a file for control mode: pass --control URL, or --state-dir DIR)\n"
        )
        raise typer.Exit(1) from None
    problems = file_problems(settings)
    if problems:
        sys.stderr.write(str(ConfigError(str(file), problems)) + "\n")
        raise typer.Exit(1)
    typer.echo(
        f"{file}: ok — node {settings.node}, {len(settings.services)} service(s), "
        + ", ".join(_listeners(settings))
    )


def _listeners(settings: IngressSettings) -> list[str]:
    return [
        f"{name} {listener.listen}"
        for name, listener in (
            ("tunnel", settings.tunnel),
            ("http", settings.http),
            ("https", settings.https),
            ("admin", settings.admin),
        )
        if listener is not None
    ]


def _check_controlled(file: Path, control: str | None, root: Path) -> NoReturn:
    """`check-config` in control mode: the file, the state directory, the stored snapshot."""
    from common.channel import IngressConfig
    from common.channel.check import Checker, check_controlled, echo_and_exit
    from ingress import controlled

    def problems(settings: IngressSettings, enrolled: bool) -> list[tuple[str, str]]:
        found = file_problems(settings)
        return found if enrolled else [p for p in found if not p[0].startswith("tunnel.")]

    def apply(settings: IngressSettings, config: IngressConfig) -> list[str]:
        controlled.load_certificates(controlled.build(settings, config))
        names = ", ".join(service.name for service in config.services) or "none"
        return [
            f"{len(config.services)} service(s): {names}; "
            f"{len(config.certificates)} HTTPS certificate(s); "
            f"{len(config.revoked.serials)} revoked agent certificate(s)"
        ]

    checker: Checker[IngressConfig, IngressSettings] = Checker(
        "ingress", IngressConfig, "node", "tunnel", lambda enrollment: enrollment.subject.name,
        lambda path, overlay: load_settings(path, overlay, controlled=True), problems,
        lambda settings: "file: valid for control mode, " + ", ".join(_listeners(settings)),
        apply,
    )  # fmt: skip
    echo_and_exit(check_controlled(checker, file, control, root))


@app.command()
def run(
    config: ConfigOption,
    use_uvloop: Annotated[
        bool, typer.Option("--uvloop/--no-uvloop", help="Run on uvloop's event loop.")
    ] = True,
    control: ControlOption = None,
    token: TokenOption = None,
    control_ca: ControlCaOption = None,
    state_dir: StateDirOption = None,
) -> None:
    """Run the ingress node until SIGTERM or SIGINT; SIGHUP reloads the configuration.

    With --control the node's identity and tunnel certificate come from the control plane
    (enrolled with --token on the first start, renewed in the background), and so do its
    services and revoked agents (snapshots over the control channel, stored in the state
    directory); the rest of the configuration comes from the file, which must not set
    `services`.
    """
    started = None
    if control is not None:
        started = _enroll(config, control, token, control_ca, state_dir)
    elif token or control_ca or state_dir:
        sys.stderr.write("kokoa ingress: --token, --control-ca and --state-dir need --control\n")
        raise typer.Exit(2)
    overlay = _overlay(started) if started else None
    settings = _load(config, overlay, controlled=started is not None)
    logs.configure(settings.log.level, settings.log.format)
    from ingress.app import run as run_node  # keeps check-config light

    node = run_node(config, settings, overlay=overlay, control=started)
    collector.tune()
    try:
        if use_uvloop:
            import uvloop

            uvloop.run(node)
        else:
            asyncio.run(node)
    except OSError as exc:
        sys.stderr.write(f"kokoa ingress: cannot start: {exc}\n")
        raise typer.Exit(1) from None


def _enroll(
    config: Path, url: str, token: str | None, ca_file: Path | None, state_dir: Path | None
) -> Started:
    from common.enroll import ControlOptions, EnrollError, default_state_dir, start

    options = ControlOptions(url, state_dir or default_state_dir(config), token, ca_file)
    try:
        return start(options, "ingress")
    except (EnrollError, pki.PkiError, OSError) as exc:
        sys.stderr.write(f"kokoa ingress: enrollment failed: {exc}\n")
        raise typer.Exit(1) from None


def _overlay(started: Started) -> dict[str, object]:
    """What the enrollment decides in the configuration: the node and its tunnel files."""
    tls = started.state.tls
    files = {"cert": str(tls.cert), "key": str(tls.key), "ca": str(tls.ca)}
    return {"node": started.enrollment.subject.name, "tunnel": files}
