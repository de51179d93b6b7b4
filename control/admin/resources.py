"""What services, ingress nodes and edge agents share on the command line.

`item_verbs` makes show/enable/disable/delete (and `enroll` for nodes and agents) once for
all three; their own modules (services.py, nodes.py, agents.py) add list, create and update,
which mirror each one's API fields. A resource is named by its id or its name (a service
also by its hostname).
"""

from __future__ import annotations

from dataclasses import dataclass
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


def item_path(session: Session, kind: Kind, ref: str, *rest: str) -> str:
    item = session.resolve(kind.collection, ref, kind.what, kind.names)
    return session.org_path(kind.collection, item, *rest)


def item_verbs(app: typer.Typer, kind: Kind, *, enroll: bool = False) -> None:
    """show, enable, disable, delete (and enroll) for `kind`."""

    @app.command("show", help=f"One {kind.what}, every field.")
    def show(ctx: typer.Context, ref: Ref) -> None:
        session = current(ctx)
        emit_one(session.client().get(item_path(session, kind, ref)), session.fmt)

    @app.command("enable", help=f"Enable a {kind.what}.")
    def enable(ctx: typer.Context, ref: Ref) -> None:
        session = current(ctx)
        emit_one(session.client().post(item_path(session, kind, ref, "enable")), session.fmt)

    @app.command("disable", help=f"Disable a {kind.what} (it stays configured).")
    def disable(ctx: typer.Context, ref: Ref) -> None:
        session = current(ctx)
        emit_one(session.client().post(item_path(session, kind, ref, "disable")), session.fmt)

    @app.command("delete", help=f"Delete a {kind.what}.")
    def delete(ctx: typer.Context, ref: Ref, yes: Yes = False) -> None:
        session = current(ctx)
        path = item_path(session, kind, ref)
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
                typer.Option(
                    min=1,
                    max=1440,
                    help="Minutes it stays valid (default: the server's setting, 60).",
                ),
            ] = None,
        ) -> None:
            session = current(ctx)
            path = item_path(session, kind, ref, "enrollment-tokens")
            body = {"expires_in_minutes": expires_in_minutes} if expires_in_minutes else None
            created = session.client().post(path, body)
            emit_one(created, session.fmt)
            note("the token is shown only once; run the command above on that machine")


def list_items(
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


def changes(**fields: Any) -> dict[str, Any]:
    """The PATCH body: only the options given (None means not given)."""
    body = {key: value for key, value in fields.items() if value is not None}
    if not body:
        raise UsageError("nothing to change: give at least one option (see --help)")
    return body


def labels_change(pairs: list[str] | None, clear: bool, option: str) -> dict[str, str] | None:
    if clear and pairs:
        raise UsageError(f"{option} and --no-{option.removeprefix('--')}s exclude each other")
    return {} if clear else labels_of(pairs, option) if pairs else None
