"""`kokoa admin services|nodes|agents …`: the three resources that describe the tunnel.

They share show/enable/disable/delete (and nodes and agents `enroll`), made once by
`_item_verbs`; list, create and update mirror each one's API fields. A resource is named by
its id or its name (a service also by its hostname).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Annotated, Any

import typer

from control.admin.errors import UsageError
from control.admin.output import emit_list, emit_one, note
from control.admin.session import Session, current


@dataclass(frozen=True)
class Kind:
    collection: str
    what: str
    columns: tuple[str, ...]
    names: tuple[str, ...] = ("name",)


SERVICE = Kind(
    "services", "service", ("id", "name", "hostname", "origin", "enabled", "agent_ids"),
    ("name", "hostname"),
)  # fmt: skip
NODE = Kind(
    "nodes", "ingress node",
    ("id", "name", "public_address", "tunnel_address", "region", "weight", "enabled", "status"),
)  # fmt: skip
AGENT = Kind(
    "agents", "edge agent",
    ("id", "name", "enabled", "labels", "ingress_mode", "status", "last_seen_at"),
)  # fmt: skip

Ref = Annotated[str, typer.Argument(metavar="ID|NAME", help="Its id or its name.")]
Yes = Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")]
Limit = Annotated[int | None, typer.Option("--limit", min=1, help="At most this many.")]
Query = Annotated[str | None, typer.Option("--q", help="Case-insensitive text search.")]
EnabledFilter = Annotated[
    bool | None, typer.Option("--enabled/--disabled", help="Only enabled (or disabled) ones.")
]
LabelFilter = Annotated[
    list[str] | None, typer.Option("--label", help="key=value; repeat to require several.")
]
Labels = Annotated[
    list[str] | None, typer.Option("--label", help="key=value; repeat (update: replaces all).")
]
NoLabels = Annotated[bool, typer.Option("--no-labels", help="Remove every label.")]
Disabled = Annotated[bool, typer.Option("--disabled", help="Create it disabled.")]
Name = Annotated[str | None, typer.Option("--name", help="Name (unique in the organisation).")]

services = typer.Typer(
    help="Published host names and the origins they lead to.", no_args_is_help=True
)
nodes = typer.Typer(help="Ingress nodes: the public entry points.", no_args_is_help=True)
agents = typer.Typer(help="Edge agents: the connectors next to the origins.", no_args_is_help=True)


def _item_path(session: Session, kind: Kind, ref: str, *rest: str) -> str:
    item = session.resolve(kind.collection, ref, kind.what, kind.names)
    return session.org_path(kind.collection, item, *rest)


def _item_verbs(app: typer.Typer, kind: Kind, *, enroll: bool = False) -> None:
    """show, enable, disable, delete (and enroll) for `kind`."""

    @app.command("show", help=f"One {kind.what}, every field.")
    def show(ctx: typer.Context, ref: Ref) -> None:
        session = current(ctx)
        emit_one(session.client().get(_item_path(session, kind, ref)), session.fmt)

    @app.command("enable", help=f"Enable a {kind.what}.")
    def enable(ctx: typer.Context, ref: Ref) -> None:
        session = current(ctx)
        emit_one(session.client().post(_item_path(session, kind, ref, "enable")), session.fmt)

    @app.command("disable", help=f"Disable a {kind.what} (it stays configured).")
    def disable(ctx: typer.Context, ref: Ref) -> None:
        session = current(ctx)
        emit_one(session.client().post(_item_path(session, kind, ref, "disable")), session.fmt)

    @app.command("delete", help=f"Delete a {kind.what}.")
    def delete(ctx: typer.Context, ref: Ref, yes: Yes = False) -> None:
        session = current(ctx)
        path = _item_path(session, kind, ref)
        if not yes:
            typer.confirm(f"Delete {kind.what} {ref}?", abort=True, err=True)
        session.client().delete(path)
        note(f"deleted {kind.what} {ref}")

    if enroll:

        @app.command("enroll", help=f"A one-time enrollment token for a {kind.what}.")
        def enroll_token(
            ctx: typer.Context,
            ref: Ref,
            expires_in_minutes: Annotated[
                int | None,
                typer.Option(min=1, max=1440, help="Minutes it stays valid (default: 60)."),
            ] = None,
        ) -> None:
            session = current(ctx)
            path = _item_path(session, kind, ref, "enrollment-tokens")
            body = {"expires_in_minutes": expires_in_minutes} if expires_in_minutes else None
            created = session.client().post(path, body)
            emit_one(created, session.fmt)
            note("the token is shown only once; run the command above on that machine")


def _list(
    session: Session, kind: Kind, limit: int | None, **params: str | bool | list[str] | None
) -> None:
    items = session.client().list_all(session.org_path(kind.collection), params, limit)
    emit_list(items, session.fmt, kind.columns)


def labels_of(pairs: list[str] | None, option: str = "--label") -> dict[str, str]:
    labels: dict[str, str] = {}
    for pair in pairs or []:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise UsageError(f"{option} {pair!r}: expected key=value")
        labels[key] = value
    return labels


def _changes(**fields: Any) -> dict[str, Any]:
    """The PATCH body: only the options given (None means not given)."""
    body = {key: value for key, value in fields.items() if value is not None}
    if not body:
        raise UsageError("nothing to change: give at least one option (see --help)")
    return body


def _labels_change(pairs: list[str] | None, clear: bool, option: str) -> dict[str, str] | None:
    if clear and pairs:
        raise UsageError(f"{option} and --no-{option.removeprefix('--')}s exclude each other")
    return {} if clear else labels_of(pairs, option) if pairs else None


# services ---------------------------------------------------------------------------------

Agents = Annotated[
    list[str] | None,
    typer.Option("--agent", help="An edge agent (id or name) that serves it; repeat."),
]
Timeout = Annotated[float | None, typer.Option(min=0.001, help="Seconds (API default if unset).")]
HostHeader = Annotated[str | None, typer.Option(help="Host header sent to the origin.")]


@services.command("list")
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
    _list(session, SERVICE, limit, q=q, enabled=enabled, agent_id=agent_id)


@services.command("create")
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


@services.command("update")
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
    body = _changes(
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
    path = _item_path(session, SERVICE, ref)
    emit_one(session.client().patch(path, body), session.fmt)


_item_verbs(services, SERVICE)


# ingress nodes ----------------------------------------------------------------------------

Weight = Annotated[int | None, typer.Option(min=1, max=1000, help="Share of new connections.")]


@nodes.command("list")
def list_nodes(
    ctx: typer.Context,
    q: Query = None,
    enabled: EnabledFilter = None,
    label: LabelFilter = None,
    region: Annotated[str | None, typer.Option(help="Only this region.")] = None,
    limit: Limit = None,
) -> None:
    """Ingress nodes, all pages (or the first --limit)."""
    _list(current(ctx), NODE, limit, q=q, enabled=enabled, label=label or None, region=region)


@nodes.command("create")
def create_node(
    ctx: typer.Context,
    name: Annotated[str, typer.Option(help="Name (unique in the organisation).")],
    public_address: Annotated[str, typer.Option(help="host:port users reach.")],
    tunnel_address: Annotated[str, typer.Option(help="host:port agents dial (QUIC).")],
    region: Annotated[str, typer.Option(help="Region name.")] = "",
    label: Labels = None,
    weight: Weight = None,
    disabled: Disabled = False,
) -> None:
    """Register an ingress node (then `nodes enroll` it)."""
    session = current(ctx)
    body: dict[str, Any] = {
        "name": name,
        "public_address": public_address,
        "tunnel_address": tunnel_address,
        "region": region,
        "labels": labels_of(label),
        "enabled": not disabled,
    }
    if weight is not None:
        body["weight"] = weight
    emit_one(session.client().post(session.org_path("nodes"), body), session.fmt)


@nodes.command("update")
def update_node(
    ctx: typer.Context,
    ref: Ref,
    name: Name = None,
    public_address: Annotated[str | None, typer.Option(help="New public host:port.")] = None,
    tunnel_address: Annotated[str | None, typer.Option(help="New tunnel host:port.")] = None,
    region: Annotated[str | None, typer.Option(help="New region ('' for none).")] = None,
    label: Labels = None,
    no_labels: NoLabels = False,
    weight: Weight = None,
) -> None:
    """Change the fields given; the others stay as they are."""
    session = current(ctx)
    body = _changes(
        name=name,
        public_address=public_address,
        tunnel_address=tunnel_address,
        region=region,
        labels=_labels_change(label, no_labels, "--label"),
        weight=weight,
    )
    emit_one(session.client().patch(_item_path(session, NODE, ref), body), session.fmt)


_item_verbs(nodes, NODE, enroll=True)


# edge agents ------------------------------------------------------------------------------


class IngressMode(StrEnum):
    all = "all"
    labels = "labels"


Mode = Annotated[
    IngressMode | None,
    typer.Option(help="Dial all enabled nodes, or those with --ingress-label (implied by it)."),
]
IngressLabels = Annotated[
    list[str] | None,
    typer.Option("--ingress-label", help="key=value a node must carry; repeat."),
]


@agents.command("list")
def list_agents(
    ctx: typer.Context,
    q: Query = None,
    enabled: EnabledFilter = None,
    label: LabelFilter = None,
    limit: Limit = None,
) -> None:
    """Edge agents, all pages (or the first --limit)."""
    _list(current(ctx), AGENT, limit, q=q, enabled=enabled, label=label or None)


@agents.command("create")
def create_agent(
    ctx: typer.Context,
    name: Annotated[str, typer.Option(help="Name (unique in the organisation).")],
    label: Labels = None,
    ingress_mode: Mode = None,
    ingress_label: IngressLabels = None,
    disabled: Disabled = False,
) -> None:
    """Register an edge agent (then `agents enroll` it)."""
    session = current(ctx)
    ingress = labels_of(ingress_label, "--ingress-label")
    mode = ingress_mode.value if ingress_mode else "labels" if ingress else "all"
    body = {
        "name": name,
        "labels": labels_of(label),
        "ingress_mode": mode,
        "ingress_labels": ingress,
        "enabled": not disabled,
    }
    emit_one(session.client().post(session.org_path("agents"), body), session.fmt)


@agents.command("update")
def update_agent(
    ctx: typer.Context,
    ref: Ref,
    name: Name = None,
    label: Labels = None,
    no_labels: NoLabels = False,
    ingress_mode: Mode = None,
    ingress_label: IngressLabels = None,
    no_ingress_labels: Annotated[
        bool, typer.Option("--no-ingress-labels", help="Remove every ingress label.")
    ] = False,
) -> None:
    """Change the fields given; the others stay as they are."""
    session = current(ctx)
    ingress = _labels_change(ingress_label, no_ingress_labels, "--ingress-label")
    mode = ingress_mode.value if ingress_mode else "labels" if ingress else None
    body = _changes(
        name=name,
        labels=_labels_change(label, no_labels, "--label"),
        ingress_mode=mode,
        ingress_labels=ingress,
    )
    emit_one(session.client().patch(_item_path(session, AGENT, ref), body), session.fmt)


_item_verbs(agents, AGENT, enroll=True)
