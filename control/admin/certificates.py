"""`kokoa admin certificates …`: the HTTPS certificates the organisation's ingress nodes serve
for its host names (docs/api.md, "Public certificates"). A certificate is named by its id or
by one of its DNS names; the key is read from a file and never printed."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from control.admin.errors import UsageError
from control.admin.output import emit_list, emit_one, note
from control.admin.resources import Limit, Yes
from control.admin.session import Session, canonical, current, is_uuid

COLUMNS = ("id", "names", "not_after", "issuer", "key_type")

app = typer.Typer(
    help="HTTPS certificates the ingress nodes serve for your host names.", no_args_is_help=True
)

Ref = Annotated[str, typer.Argument(metavar="ID|NAME", help="Its id, or a DNS name it carries.")]
Chain = Annotated[
    Path,
    typer.Option(
        "--chain",
        exists=True,
        dir_okay=False,
        help="PEM file: the server's certificate, then each issuer (e.g. fullchain.pem).",
    ),
]
Key = Annotated[
    Path,
    typer.Option(
        "--key", exists=True, dir_okay=False, help="PEM file of its unencrypted private key."
    ),
]


def _path(session: Session, ref: str) -> str:
    """The API path of the certificate `ref` names: by id, or the one carrying DNS name `ref`."""
    if is_uuid(ref):
        return session.org_path("certificates", canonical(ref))
    wanted = ref.lower().rstrip(".")
    items = session.client().list_all(session.org_path("certificates"), {})
    found = [item for item in items if wanted in item.get("names", [])]
    if len(found) != 1:
        ids = ", ".join(str(item["id"]) for item in found)
        raise UsageError(
            f"{ref!r} is carried by several certificates ({ids}): name one by its id"
            if found
            else f"no certificate carries the name {ref!r}"
        )
    return session.org_path("certificates", str(found[0]["id"]))


def _body(chain: Path, key: Path) -> dict[str, str]:
    try:
        return {"chain": chain.read_text(), "private_key": key.read_text()}
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"cannot read the PEM files: {exc}") from None


@app.command("list")
def list_certificates(ctx: typer.Context, limit: Limit = None) -> None:
    """Certificates, the soonest to expire first (all pages, or the first --limit)."""
    session = current(ctx)
    items = session.client().list_all(session.org_path("certificates"), {}, limit)
    emit_list(items, session.fmt, COLUMNS)


@app.command("show")
def show_certificate(ctx: typer.Context, ref: Ref) -> None:
    """One certificate, every field (its chain too; never the key)."""
    session = current(ctx)
    emit_one(session.client().get(_path(session, ref)), session.fmt)


@app.command("upload")
def upload_certificate(ctx: typer.Context, chain: Chain, key: Key) -> None:
    """Upload a certificate and its key; the nodes serve it within seconds."""
    session = current(ctx)
    body = _body(chain, key)
    emit_one(session.client().post(session.org_path("certificates"), body), session.fmt)


@app.command("replace")
def replace_certificate(ctx: typer.Context, ref: Ref, chain: Chain, key: Key) -> None:
    """Put a renewed certificate and key in place of one (it keeps its id)."""
    session = current(ctx)
    body = _body(chain, key)
    emit_one(session.client().put(_path(session, ref), body), session.fmt)


@app.command("delete")
def delete_certificate(ctx: typer.Context, ref: Ref, yes: Yes = False) -> None:
    """Delete a certificate: the nodes stop serving it."""
    session = current(ctx)
    path = _path(session, ref)
    if not yes:
        typer.confirm(f"Delete certificate {ref}?", abort=True, err=True)
    session.client().delete(path)
    note(f"deleted certificate {ref}")
