"""`kokoa control …`: serve the control plane, create the first admin, back up and restore.

Heavy imports (FastAPI, SQLAlchemy, uvicorn) happen inside the commands, so `kokoa control
--help` stays fast and importing this module does no I/O.
"""

from __future__ import annotations

import asyncio
import getpass
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from control import ca_cli

if TYPE_CHECKING:
    from control.settings import Settings

app = typer.Typer(help="The Kokoa control plane.", no_args_is_help=True)
app.add_typer(ca_cli.app, name="ca")
ConfigOption = Annotated[
    Path | None,
    typer.Option("--config", "-c", envvar="KOKOA_CONFIG_FILE", help="YAML settings file."),
]


@app.callback()
def _group() -> None:
    """The Kokoa control plane (REST API, accounts, organisations, audit log)."""


def _fail(message: str, code: int = 1) -> typer.Exit:
    typer.echo(f"kokoa control: {message}", err=True)
    return typer.Exit(code)


def load_settings(config: Path | None) -> Settings:
    from pydantic import ValidationError

    from control.settings import Settings

    try:
        return Settings(config_file=config)
    except ValidationError as exc:
        lines = [
            f"  {'.'.join(map(str, e['loc'])) or '(settings)'}: {e['msg']}" for e in exc.errors()
        ]
        raise _fail(
            "invalid settings" + (f" in {config}" if config else "") + ":\n" + "\n".join(lines), 2
        ) from None


async def _migrate(settings: Settings) -> str | None:
    from control.db import migrate
    from control.db.engine import create_engine

    engine = create_engine(settings.effective_database_url)
    try:
        await migrate.upgrade(engine)
        return await migrate.current_revision(engine)
    finally:
        await engine.dispose()


@app.command()
def migrate(config: ConfigOption = None) -> None:
    """Bring the database schema up to date (serve does this too)."""
    settings = load_settings(config)
    revision = asyncio.run(_migrate(settings))
    typer.echo(f"database at revision {revision}")


@app.command()
def serve(
    config: ConfigOption = None,
    host: Annotated[str | None, typer.Option(help="Override listen_host.")] = None,
    port: Annotated[
        int | None, typer.Option(min=0, max=65535, help="Override listen_port.")
    ] = None,
) -> None:
    """Run the migrations, then serve the API (and docs at /api/docs)."""
    import uvicorn

    from common.logs import configure
    from control.channel.messages import MAX_MESSAGE
    from control.main import create_app

    settings = load_settings(config)
    configure(settings.log_level, settings.log_format)
    asyncio.run(_migrate(settings))
    uvicorn.run(
        create_app(settings),
        host=host or settings.listen_host,
        port=settings.listen_port if port is None else port,
        proxy_headers=settings.forwarded_allow_ips is not None,
        forwarded_allow_ips=settings.forwarded_allow_ips,
        log_config=None,
        access_log=False,
        server_header=False,
        ssl_certfile=settings.tls_cert_file,
        ssl_keyfile=settings.tls_key_file,
        ws_max_size=MAX_MESSAGE,  # the control channel's bound, enforced before reading it all
    )


def _read_password(from_stdin: bool) -> str:
    if from_stdin:
        return sys.stdin.readline().rstrip("\n")
    password = getpass.getpass("Password: ")
    if getpass.getpass("Again: ") != password:
        raise _fail("the passwords differ")
    return password


@app.command("create-admin")
def create_admin(
    email: Annotated[str, typer.Option(help="The administrator's e-mail address.")],
    config: ConfigOption = None,
    name: Annotated[str, typer.Option(help="Display name.")] = "",
    org: Annotated[
        str, typer.Option(help="Name of the organisation they will own.")
    ] = "My organisation",
    password_stdin: Annotated[
        bool, typer.Option("--password-stdin", help="Read the password from standard input.")
    ] = False,
) -> None:
    """Create an owner account and its organisation (works when sign-up is closed)."""
    settings = load_settings(config)
    password = _read_password(password_stdin)
    asyncio.run(_migrate(settings))
    account, org_id = asyncio.run(_create_admin(settings, email, password, name, org))
    typer.echo(f"created {account}, owner of organisation {org_id}")


async def _create_admin(
    settings: Settings, email: str, password: str, name: str, org: str
) -> tuple[str, str]:
    from control.runtime import build_runtime
    from control.services import accounts
    from control.services.errors import DomainError

    runtime = build_runtime(settings)
    try:
        async with runtime.sessionmaker() as db:
            user, organisation = await accounts.create_admin(
                db, runtime, email, password, name, org
            )
        return user.email, str(organisation.id)
    except DomainError as exc:
        raise _fail(exc.detail) from None
    finally:
        await runtime.engine.dispose()


def _sqlite_file(settings: Settings, verb: str) -> Path:
    from control.db.engine import is_sqlite, sqlite_path

    url = settings.effective_database_url
    path = sqlite_path(url) if is_sqlite(url) else None
    if path is None:
        raise _fail(
            f"{verb} works on the embedded SQLite database; for PostgreSQL use pg_dump -Fc / "
            "pg_restore (see docs/control-plane.md, 'Backup and restore')"
        )
    return path


@app.command()
def backup(
    file: Annotated[Path, typer.Argument(help="Where to write the backup.")],
    config: ConfigOption = None,
) -> None:
    """Copy the SQLite database to FILE, consistently, while the server runs."""
    from control.backup import BackupError, backup_sqlite

    try:
        backup_sqlite(_sqlite_file(load_settings(config), "backup"), file)
    except BackupError as exc:
        raise _fail(str(exc)) from None
    typer.echo(f"backed up to {file}")


@app.command()
def restore(
    file: Annotated[Path, typer.Argument(help="A file made by `kokoa control backup`.")],
    config: ConfigOption = None,
) -> None:
    """Replace the SQLite database with FILE (stop the server first), then migrate it."""
    from control.backup import BackupError, restore_sqlite

    settings = load_settings(config)
    try:
        kept = restore_sqlite(file, _sqlite_file(settings, "restore"))
    except BackupError as exc:
        raise _fail(str(exc)) from None
    asyncio.run(_migrate(settings))
    typer.echo(f"restored {file}" + (f"; the previous database is in {kept}" if kept else ""))
