"""`kokoa admin services …`: published host names and the origins they lead to."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from control.admin.errors import UsageError
from control.admin.output import emit_one
from control.admin.resources import (
    Disabled,
    EnabledFilter,
    Kind,
    Limit,
    Name,
    Query,
    Ref,
    changes,
    item_path,
    item_verbs,
    list_items,
)
from control.admin.session import current

SERVICE = Kind(
    collection="services",
    what="service",
    columns=("id", "name", "hostname", "origin", "enabled", "agent_ids"),
    names=("name", "hostname"),
)

app = typer.Typer(help="Published host names and the origins they lead to.", no_args_is_help=True)

Agents = Annotated[
    list[str] | None,
    typer.Option("--agent", help="An edge agent (id or name) that serves it; repeat."),
]
Timeout = Annotated[float | None, typer.Option(min=0.001, help="Seconds (API default if unset).")]
HostHeader = Annotated[str | None, typer.Option(help="Host header sent to the origin.")]


@app.command("list")
def list_services(
    ctx: typer.Context,
    q: Query = None,
    enabled: EnabledFilter = None,
    agent: Annotated[str | None, typer.Option(help="Only those served by this agent.")] = None,
    limit: Limit = None,
) -> None:
    """Services, all pages (or the first --limit)."""
    session = current(ctx)
    agent_id = session.resolve("agents", agent, "edge agent") if agent else None
    list_items(session, SERVICE, limit, q=q, enabled=enabled, agent_id=agent_id)


@app.command("create")
def create_service(
    ctx: typer.Context,
    hostname: Annotated[str, typer.Option(help="Public host name (globally unique).")],
    origin: Annotated[str, typer.Option(help="http(s)://host[:port] of the app.")],
    name: Annotated[str | None, typer.Option(help="Name (default: the hostname).")] = None,
    description: Annotated[str, typer.Option(help="Free text.")] = "",
    agent: Agents = None,
    disabled: Disabled = False,
    connect_timeout: Timeout = None,
    read_timeout: Timeout = None,
    tls_verify: Annotated[
        bool, typer.Option("--tls-verify/--no-tls-verify", help="Verify an https origin.")
    ] = True,
    host_header: HostHeader = None,
) -> None:
    """Publish a host name that leads to an origin."""
    session = current(ctx)
    body: dict[str, Any] = {
        "name": name or hostname,
        "hostname": hostname,
        "origin": origin,
        "description": description,
        "agent_ids": [session.resolve("agents", a, "edge agent") for a in agent or []],
        "enabled": not disabled,
        "tls_verify": tls_verify,
    }
    extra = {"connect_timeout": connect_timeout, "read_timeout": read_timeout}
    body |= {k: v for k, v in (extra | {"host_header": host_header}).items() if v is not None}
    emit_one(session.client().post(session.org_path("services"), body), session.fmt)


@app.command("update")
def update_service(
    ctx: typer.Context,
    ref: Ref,
    name: Name = None,
    hostname: Annotated[str | None, typer.Option(help="New public host name.")] = None,
    origin: Annotated[str | None, typer.Option(help="New origin URL.")] = None,
    description: Annotated[str | None, typer.Option(help="New description.")] = None,
    agent: Agents = None,
    no_agents: Annotated[bool, typer.Option("--no-agents", help="Served by no agent.")] = False,
    connect_timeout: Timeout = None,
    read_timeout: Timeout = None,
    tls_verify: Annotated[bool | None, typer.Option("--tls-verify/--no-tls-verify")] = None,
    host_header: HostHeader = None,
    no_host_header: Annotated[
        bool, typer.Option("--no-host-header", help="Send the client's Host header again.")
    ] = False,
) -> None:
    """Change the fields given; the others stay as they are."""
    session = current(ctx)
    if agent and no_agents:
        raise UsageError("--agent and --no-agents exclude each other")
    if host_header and no_host_header:
        raise UsageError("--host-header and --no-host-header exclude each other")
    agent_ids = [session.resolve("agents", a, "edge agent") for a in agent or []]
    body = changes(
        name=name,
        hostname=hostname,
        origin=origin,
        description=description,
        agent_ids=[] if no_agents else agent_ids or None,
        connect_timeout=connect_timeout,
        read_timeout=read_timeout,
        tls_verify=tls_verify,
        host_header=host_header,
    )
    if no_host_header:
        body["host_header"] = None  # nullable: back to the client's Host
    path = item_path(session, SERVICE, ref)
    emit_one(session.client().patch(path, body), session.fmt)


item_verbs(app, SERVICE)
