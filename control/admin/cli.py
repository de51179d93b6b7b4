"""`kokoa admin …`: the root command, its global options, login/logout and `orgs list`.

Every failure is a typed AdminError (errors.py) that `AdminGroup.invoke` prints as
`kokoa admin: …` lines on stderr before exiting with its code: never a traceback.
"""

from __future__ import annotations

import os
import sys
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer
from typer.core import TyperGroup

from control.admin import agents, certificates, config, nodes, people, services
from control.admin.errors import AdminError, UsageError
from control.admin.output import Format, emit_list, note
from control.admin.session import Session, current

ORG_COLUMNS = ("id", "name", "role", "created_at")


class AdminGroup(TyperGroup):
    """The root group: reports an AdminError from any command and exits with its code."""

    # typer vendors click (typer._click) without a public name for its Context base class.
    def invoke(self, ctx: Any) -> Any:
        try:
            return super().invoke(ctx)
        except AdminError as exc:
            for number, line in enumerate(exc.lines()):
                typer.echo(f"kokoa admin: {line}" if number == 0 else line, err=True)
            raise typer.Exit(exc.exit_code) from None


class Output(StrEnum):
    table = "table"
    json = "json"


app = typer.Typer(
    cls=AdminGroup,
    help="Manage a Kokoa control plane through its REST API (see docs/admin-cli.md).",
    no_args_is_help=True,
)
app.add_typer(services.app, name="services")
app.add_typer(nodes.app, name="nodes")
app.add_typer(agents.app, name="agents")
app.add_typer(certificates.app, name="certificates")
app.add_typer(people.tokens, name="tokens")
app.add_typer(people.members, name="members")
orgs = typer.Typer(help="The organisations your token can see.", no_args_is_help=True)
app.add_typer(orgs, name="orgs")


@app.callback()
def _root(
    ctx: typer.Context,
    org: Annotated[
        str | None,
        typer.Option(
            "--org",
            envvar="KOKOA_ORG",
            help="Organisation (id or name); needed when the token sees several.",
        ),
    ] = None,
    output: Annotated[
        Output,
        typer.Option("--output", "-o", envvar="KOKOA_OUTPUT", help="table (people) or json."),
    ] = Output.table,
) -> None:
    """Manage a Kokoa control plane through its REST API."""
    fmt: Format = "json" if output is Output.json else "table"
    session = Session(org_ref=org, fmt=fmt, env=dict(os.environ))
    ctx.obj = session
    ctx.call_on_close(session.close)


@app.command()
def login(
    ctx: typer.Context,
    url: Annotated[
        str, typer.Option("--url", envvar="KOKOA_URL", help="The control plane's base URL.")
    ],
    token_stdin: Annotated[
        bool, typer.Option("--token-stdin", help="Read the API token from standard input.")
    ] = False,
    ca_file: Annotated[
        Path | None,
        typer.Option(
            "--ca-file",
            exists=True,
            dir_okay=False,
            resolve_path=True,
            help="PEM CA to trust for the control plane's certificate (else the system's).",
        ),
    ] = None,
) -> None:
    """Check an API token against the control plane and save it (mode 0600)."""
    from control.admin.client import ApiClient

    session = current(ctx)
    credentials = config.Credentials(config.check_url(url), _read_token(token_stdin), ca_file)
    with ApiClient(credentials) as client:
        found = client.get("/orgs")
    path = config.config_path(session.env)
    config.save(path, credentials)
    note(f"logged in to {credentials.url}; saved to {path} (mode 0600)")
    emit_list(found, session.fmt, ORG_COLUMNS)


def _read_token(from_stdin: bool) -> str:
    if from_stdin:
        token = sys.stdin.readline().strip()
    else:
        token = typer.prompt("API token", hide_input=True, prompt_suffix=": ").strip()
    if not token:
        raise UsageError("no token given")
    if not token.isprintable() or any(ch.isspace() for ch in token):
        raise UsageError("that is not an API token (it has spaces or control characters)")
    return token


@app.command()
def logout(ctx: typer.Context) -> None:
    """Forget the saved token (it stays valid: revoke it with `tokens revoke` or in the web app)."""
    path = config.config_path(current(ctx).env)
    note(f"removed {path}" if config.remove(path) else f"not logged in ({path} does not exist)")


@orgs.command("list")
def list_orgs(ctx: typer.Context) -> None:
    """The organisations the token can see, with your role in each."""
    session = current(ctx)
    emit_list(session.client().get("/orgs"), session.fmt, ORG_COLUMNS)
