"""`kokoa admin tokens|members …`: API tokens, members and invitations.

The API lets only people manage people: these verbs need a personal token (kokoa_pat_…) of
an admin or owner; a service-account token gets a 403 however high its role.
"""

from __future__ import annotations

from typing import Annotated, Any

import typer

from control.admin.errors import UsageError
from control.admin.output import emit_list, emit_one, note
from control.admin.session import Session, canonical, current, is_uuid, require_id
from control.auth.roles import Role

TOKEN_COLUMNS = ("id", "name", "prefix", "role", "expires_at", "last_used_at", "revoked_at")
MEMBER_COLUMNS = ("user_id", "email", "name", "role", "joined_at")
INVITATION_COLUMNS = ("id", "role", "email", "expires_at", "accepted_at")

Limit = Annotated[int | None, typer.Option("--limit", min=1, help="At most this many.")]
Personal = Annotated[
    bool, typer.Option("--personal", help="Your personal tokens instead of service accounts.")
]
Yes = Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")]
Member = Annotated[str, typer.Argument(metavar="USER_ID|EMAIL", help="The member.")]

tokens = typer.Typer(
    help="API tokens: the organisation's service accounts (or --personal ones).",
    no_args_is_help=True,
)
members = typer.Typer(help="Members, their roles, and invitations.", no_args_is_help=True)


def _tokens_path(session: Session, personal: bool) -> str:
    return "/me/tokens" if personal else session.org_path("tokens")


@tokens.command("list")
def list_tokens(ctx: typer.Context, personal: Personal = False, limit: Limit = None) -> None:
    """Tokens, newest first (revoked ones too, with revoked_at)."""
    session = current(ctx)
    items = session.client().list_all(_tokens_path(session, personal), limit=limit)
    emit_list(items, session.fmt, TOKEN_COLUMNS)


@tokens.command("create")
def create_token(
    ctx: typer.Context,
    name: Annotated[str, typer.Option(help="What it is for (shown in lists and the audit log).")],
    role: Annotated[
        Role | None, typer.Option(help="Service account's role (default viewer; at most admin).")
    ] = None,
    expires_in_days: Annotated[
        int | None, typer.Option(min=1, max=365, help="Days until it stops working (default 90).")
    ] = None,
    personal: Personal = False,
) -> None:
    """Create a token; its secret is printed this once and never again."""
    session = current(ctx)
    if personal and role is not None:
        raise UsageError("a personal token acts with your own roles; --role is for service tokens")
    body: dict[str, Any] = {"name": name}
    if expires_in_days is not None:
        body["expires_in_days"] = expires_in_days
    if role is not None:
        body["role"] = role.value
    emit_one(session.client().post(_tokens_path(session, personal), body), session.fmt)
    note("the token is shown only this once: store it now (e.g. in your CI's secret store)")


@tokens.command("revoke")
def revoke_token(
    ctx: typer.Context,
    ref: Annotated[str, typer.Argument(metavar="ID|NAME", help="The token.")],
    personal: Personal = False,
) -> None:
    """Revoke a token: it stops working at once."""
    session = current(ctx)
    path = _tokens_path(session, personal)
    token_id = canonical(ref) if is_uuid(ref) else _live_token_named(session, path, ref)
    session.client().delete(f"{path}/{token_id}")
    note(f"revoked token {ref}")


def _live_token_named(session: Session, path: str, name: str) -> str:
    live = [t for t in session.client().list_all(path) if t["name"] == name and not t["revoked_at"]]
    if len(live) != 1:
        raise UsageError(f"no token named {name!r}" if not live else f"{name!r} is ambiguous")
    return str(live[0]["id"])


@members.command("list")
def list_members(
    ctx: typer.Context,
    q: Annotated[str | None, typer.Option("--q", help="Part of the e-mail or name.")] = None,
    limit: Limit = None,
) -> None:
    """Members of the organisation and their roles."""
    session = current(ctx)
    items = session.client().list_all(session.org_path("members"), {"q": q}, limit)
    emit_list(items, session.fmt, MEMBER_COLUMNS)


@members.command("invite")
def invite(
    ctx: typer.Context,
    role: Annotated[Role, typer.Option(help="The role they get.")] = Role.VIEWER,
    email: Annotated[str | None, typer.Option(help="Only this address may accept.")] = None,
    expires_in_hours: Annotated[
        int | None, typer.Option(min=1, max=720, help="Hours it stays valid (default: setting).")
    ] = None,
) -> None:
    """Create an invitation link (there is no adding people directly: they accept it)."""
    session = current(ctx)
    body: dict[str, Any] = {"role": role.value, "email": email}
    if expires_in_hours is not None:
        body["expires_in_hours"] = expires_in_hours
    created = session.client().post(session.org_path("invitations"), body)
    emit_one(created, session.fmt)
    note("the link is shown only this once: send it to the person you invite")


@members.command("set-role")
def set_role(
    ctx: typer.Context,
    member: Member,
    role: Annotated[Role, typer.Argument(help="owner, admin, operator or viewer.")],
) -> None:
    """Change a member's role."""
    session = current(ctx)
    path = session.org_path("members", _member_id(session, member))
    emit_one(session.client().patch(path, {"role": role.value}), session.fmt)


@members.command("remove")
def remove_member(ctx: typer.Context, member: Member, yes: Yes = False) -> None:
    """Remove a member from the organisation (your own id or e-mail: leave it)."""
    session = current(ctx)
    path = session.org_path("members", _member_id(session, member))
    if not yes:
        typer.confirm(f"Remove {member} from the organisation?", abort=True, err=True)
    session.client().delete(path)
    note(f"removed {member}")


def _member_id(session: Session, member: str) -> str:
    return session.resolve("members", member, "member", ("email",))


@members.command("invitations")
def list_invitations(ctx: typer.Context, limit: Limit = None) -> None:
    """Invitations (pending, accepted and expired)."""
    session = current(ctx)
    items = session.client().list_all(session.org_path("invitations"), limit=limit)
    emit_list(items, session.fmt, INVITATION_COLUMNS)


@members.command("revoke-invitation")
def revoke_invitation(
    ctx: typer.Context, invitation_id: Annotated[str, typer.Argument(help="Its id.")]
) -> None:
    """Make an invitation link unusable."""
    session = current(ctx)
    path = session.org_path("invitations", require_id(invitation_id, "an invitation"))
    session.client().delete(path)
    note(f"revoked invitation {invitation_id}")
