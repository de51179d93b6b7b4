"""Backup and restore of the embedded SQLite database (PostgreSQL: pg_dump, see the docs).

`backup_sqlite` uses SQLite's online backup API: a consistent copy even while the server
is writing (WAL). `restore_sqlite` checks that the file is a Kokoa database of a revision
this version knows, keeps a copy of the current database next to it, then copies the backup in.
"""

from __future__ import annotations

import os
import sqlite3
from contextlib import closing
from datetime import UTC, datetime
from pathlib import Path

from alembic.script import ScriptDirectory

from control.db.migrate import alembic_config


class BackupError(Exception):
    """The backup or restore cannot be done; the message says why."""


def backup_sqlite(source: Path, destination: Path) -> None:
    """Copy the live database at `source` to `destination` (mode 0600, replaced atomically)."""
    if not source.is_file():
        raise BackupError(f"no database at {source}")
    partial = destination.with_name(destination.name + ".partial")
    partial.unlink(missing_ok=True)
    try:
        with closing(sqlite3.connect(source)) as live, closing(sqlite3.connect(partial)) as copy:
            live.backup(copy)
        os.chmod(partial, 0o600)  # password and token hashes inside
        os.replace(partial, destination)
    except sqlite3.Error as exc:
        partial.unlink(missing_ok=True)
        raise BackupError(f"backup failed: {exc}") from None


def revision_of(path: Path) -> str:
    """The alembic revision recorded in a backup file; BackupError if it is not one of ours."""
    try:
        uri = f"file:{path}?mode=ro"
        with closing(sqlite3.connect(uri, uri=True)) as db:
            row = db.execute("SELECT version_num FROM alembic_version").fetchone()
    except sqlite3.Error as exc:
        raise BackupError(f"{path} is not a Kokoa control-plane database ({exc})") from None
    if row is None:
        raise BackupError(f"{path} has no schema revision")
    revision = str(row[0])
    if ScriptDirectory.from_config(alembic_config()).get_revision(revision) is None:
        raise BackupError(f"{path} is at revision {revision}, unknown to this version of Kokoa")
    return revision


def restore_sqlite(backup: Path, live: Path) -> Path | None:
    """Replace the database at `live` with `backup`; returns where the old one was kept.

    Stop the server first: connections open during a restore would see the data change
    under them.
    """
    if not backup.is_file():
        raise BackupError(f"no backup file at {backup}")
    revision_of(backup)
    kept = None
    if live.exists():
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
        kept = live.with_name(f"{live.name}.before-restore-{stamp}")
        backup_sqlite(live, kept)
    live.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    try:
        with closing(sqlite3.connect(backup)) as source, closing(sqlite3.connect(live)) as target:
            source.backup(target)
    except sqlite3.Error as exc:
        raise BackupError(f"restore failed: {exc}") from None
    os.chmod(live, 0o600)
    return kept
