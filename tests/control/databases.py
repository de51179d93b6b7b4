"""Throwaway databases for the control-plane tests: SQLite files and a private PostgreSQL.

`postgres_admin_url(config)` returns a superuser URL: `KOKOA_TEST_PG_URL` when set, else a
PostgreSQL 15 started once per test session in a temporary directory (as the `postgres` user
when we are root, since initdb refuses root) and stopped by its own pg_ctl at session end.
The server is kept in `config.stash` so that every conftest shares one. If PostgreSQL cannot
start, the tests fail loudly: they never silently skip the PostgreSQL half.
"""

from __future__ import annotations

import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import uuid
from dataclasses import dataclass
from pathlib import Path

import asyncpg  # type: ignore[import-untyped]
import pytest
from sqlalchemy.engine import make_url

PG_BIN = Path(os.environ.get("KOKOA_TEST_PG_BIN", "/usr/lib/postgresql/15/bin"))
_SERVER = pytest.StashKey["PgServer | str"]()


@dataclass
class PgServer:
    directory: Path
    port: int

    @property
    def url(self) -> str:
        return f"postgresql+asyncpg://postgres@127.0.0.1:{self.port}/postgres"

    def stop(self) -> None:
        _as_postgres(
            [
                str(PG_BIN / "pg_ctl"),
                "-D",
                str(self.directory / "data"),
                "-m",
                "fast",
                "-w",
                "stop",
            ],
            check=False,
        )
        shutil.rmtree(self.directory, ignore_errors=True)


def _as_postgres(argv: list[str], *, check: bool = True) -> subprocess.CompletedProcess[str]:
    if os.geteuid() == 0:
        argv = ["runuser", "-u", "postgres", "--", *argv]
    result = subprocess.run(argv, capture_output=True, text=True, timeout=60)
    if check and result.returncode != 0:
        raise RuntimeError(f"{argv} failed ({result.returncode}):\n{result.stdout}{result.stderr}")
    return result


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_postgres() -> PgServer:
    """initdb + pg_ctl start in a fresh temporary directory, fsync off (throwaway data)."""
    directory = Path(tempfile.mkdtemp(prefix="kokoa-pg-"))
    if os.geteuid() == 0:
        os.chown(directory, pwd.getpwnam("postgres").pw_uid, -1)
    data = directory / "data"
    _as_postgres(
        [
            str(PG_BIN / "initdb"),
            "-D",
            str(data),
            "-A",
            "trust",
            "-U",
            "postgres",
            "--no-sync",
            "-E",
            "UTF8",
        ]
    )
    port = _free_port()
    options = (
        f"-p {port} -k {directory} -c listen_addresses=127.0.0.1 -c fsync=off "
        "-c full_page_writes=off -c synchronous_commit=off -c max_connections=200"
    )
    server = PgServer(directory, port)
    try:
        _as_postgres(
            [
                str(PG_BIN / "pg_ctl"),
                "-D",
                str(data),
                "-l",
                str(directory / "log"),
                "-w",
                "-t",
                "30",
                "start",
                "-o",
                options,
            ]
        )
    except Exception:
        log = directory / "log"
        detail = log.read_text() if log.exists() else ""
        server.stop()
        raise RuntimeError(f"PostgreSQL did not start:\n{detail}") from None
    return server


def postgres_admin_url(config: pytest.Config) -> str:
    """The superuser URL of the session's PostgreSQL (started on first use)."""
    external = os.environ.get("KOKOA_TEST_PG_URL")
    if external:
        return external
    if _SERVER not in config.stash:
        server = start_postgres()
        config.stash[_SERVER] = server
        config.add_cleanup(server.stop)
    found = config.stash[_SERVER]
    return found if isinstance(found, str) else found.url


def _asyncpg_dsn(url: str) -> str:
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


async def create_pg_database(admin_url: str, *, template: str | None = None) -> str:
    """A new, uniquely named database (optionally a copy of `template`); returns its URL."""
    name = f"kokoa_{uuid.uuid4().hex[:16]}"
    clause = f" TEMPLATE {template}" if template else ""
    connection = await asyncpg.connect(_asyncpg_dsn(admin_url))
    try:
        await connection.execute(f"CREATE DATABASE {name}{clause}")
    finally:
        await connection.close()
    return make_url(admin_url).set(database=name).render_as_string(hide_password=False)


async def drop_pg_database(admin_url: str, url: str) -> None:
    name = make_url(url).database
    connection = await asyncpg.connect(_asyncpg_dsn(admin_url))
    try:
        await connection.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
    finally:
        await connection.close()


def sqlite_url(path: Path) -> str:
    return f"sqlite+aiosqlite:///{path}"
