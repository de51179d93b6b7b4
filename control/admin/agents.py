"""`kokoa admin agents …`: edge agents, the connectors next to the origins."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated

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

AGENT = Kind(
    collection="agents",
    what="edge agent",
    columns=("id", "name", "enabled", "labels", "ingress_mode", "status", "last_seen_at"),
)

app = typer.Typer(help="Edge agents: the connectors next to the origins.", no_args_is_help=True)


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


@app.command("list")
def list_agents(
    ctx: typer.Context,
    q: Query = None,
    enabled: EnabledFilter = None,
    label: LabelFilter = None,
    limit: Limit = None,
) -> None:
    """Edge agents, all pages (or the first --limit)."""
    list_items(current(ctx), AGENT, limit, q=q, enabled=enabled, label=label or None)


@app.command("create")
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


@app.command("update")
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
    ingress = labels_change(ingress_label, no_ingress_labels, "--ingress-label")
    mode = ingress_mode.value if ingress_mode else "labels" if ingress else None
    body = changes(
        name=name,
        labels=labels_change(label, no_labels, "--label"),
        ingress_mode=mode,
        ingress_labels=ingress,
    )
    emit_one(session.client().patch(item_path(session, AGENT, ref), body), session.fmt)


item_verbs(app, AGENT, enroll=True)
