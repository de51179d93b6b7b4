"""`kokoa admin nodes …`: ingress nodes, the public entry points."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from control.admin.output import emit_one
from control.admin.resources import (
    Disabled,
    EnabledFilter,
    Kind,
    LabelFilter,
    Labels,
    Limit,
    Name,
    NoLabels,
    Query,
    Ref,
    changes,
    item_path,
    item_verbs,
    labels_change,
    labels_of,
    list_items,
)
from control.admin.session import current

NODE = Kind(
    collection="nodes",
    what="ingress node",
    columns=("id", "name", "public_address", "tunnel_address", "region", "weight", "enabled",
             "status"),
)  # fmt: skip

app = typer.Typer(help="Ingress nodes: the public entry points.", no_args_is_help=True)

Weight = Annotated[int | None, typer.Option(min=1, max=1000, help="Share of new connections.")]


@app.command("list")
def list_nodes(
    ctx: typer.Context,
    q: Query = None,
    enabled: EnabledFilter = None,
    label: LabelFilter = None,
    region: Annotated[str | None, typer.Option(help="Only this region.")] = None,
    limit: Limit = None,
) -> None:
    """Ingress nodes, all pages (or the first --limit)."""
    list_items(current(ctx), NODE, limit, q=q, enabled=enabled, label=label or None, region=region)


@app.command("create")
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


@app.command("update")
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
    body = changes(
        name=name,
        public_address=public_address,
        tunnel_address=tunnel_address,
        region=region,
        labels=labels_change(label, no_labels, "--label"),
        weight=weight,
    )
    emit_one(session.client().patch(item_path(session, NODE, ref), body), session.fmt)


item_verbs(app, NODE, enroll=True)
