"""Knowing when the configuration changed, on this replica and on the others.

Detection happens in one place for every write path (services, nodes, agents, memberships,
revocations): the app's session factory gets a `Session` subclass of its own whose listeners
look at what each flush or bulk statement touched (`snapshots.SNAPSHOT_COLUMNS`). A status
write (last seen, software version) touches none of those columns and wakes nobody.

- After the commit of such a transaction, `ChangeHub.changed()` wakes every channel of this
  app; each rebuilds its snapshot and sends it if the version differs.
- On PostgreSQL the transaction also runs `NOTIFY kokoa_config, '<replica id>'`. A
  notification is transactional: listeners get it when (and only if) the transaction
  commits. Each replica keeps one LISTEN connection (asyncpg) and wakes its channels on
  every notification of another replica; after (re)connecting it wakes them too, since it
  may have missed some.
- Every channel also rebuilds every `RECHECK` seconds whatever happened, as a safety net.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import secrets
from collections.abc import AsyncIterator, Iterator
from typing import Any

import asyncpg  # type: ignore[import-untyped]
from sqlalchemy import Delete, Update, event
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker
from sqlalchemy.orm import ORMExecuteState, Session, UOWTransaction, attributes

from common.tasks import TaskSet
from control.channel.snapshots import INSERTS_MATTER, SNAPSHOT_COLUMNS

log = logging.getLogger(__name__)

NOTIFY_CHANNEL = "kokoa_config"
LISTEN_APPLICATION = "kokoa-control-listen"  # pg_stat_activity.application_name
RECHECK = 30.0  # seconds between rebuilds of a channel's snapshot without any notification
LISTEN_PROBE = 15.0  # seconds between checks that the LISTEN connection is alive
_CHANGED = "kokoa_config_changed"  # Session.info key: this transaction changed the config
_NOTIFIED = "kokoa_config_notified"


class Waiter:
    """One channel's wake-up: set by the hub, cleared by the channel before it rebuilds.

    Made in the channel's event loop; `set` may come from another thread (a commit made
    through the same app from elsewhere) and then goes through that loop.
    """

    def __init__(self) -> None:
        self._event = asyncio.Event()
        self._loop = asyncio.get_running_loop()

    def set(self) -> None:
        try:
            same = asyncio.get_running_loop() is self._loop
        except RuntimeError:
            same = False
        if same:
            self._event.set()
        elif not self._loop.is_closed():
            self._loop.call_soon_threadsafe(self._event.set)

    async def wait(self, within: float) -> bool:
        """Wait for a change, or `within` seconds at most; True if woken by a change."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(within):
                await self._event.wait()
        woken = self._event.is_set()
        self._event.clear()
        return woken


class ChangeHub:
    """Per application: wakes every open channel when the configuration may have changed."""

    def __init__(self, sessionmaker: async_sessionmaker[AsyncSession], engine: AsyncEngine) -> None:
        self.replica = secrets.token_hex(8)
        self.changes = 0  # wake-ups so far (local commits and other replicas' notifications)
        self._waiters: set[Waiter] = set()
        self._connect_args = _asyncpg_args(engine)
        notify = f"NOTIFY {NOTIFY_CHANNEL}, '{self.replica}'" if self._connect_args else None
        sessionmaker.configure(sync_session_class=_session_class(self, notify))
        self._tasks = TaskSet()
        self.listening = False  # whether the LISTEN connection is up (PostgreSQL)
        self.listens = 0  # LISTEN connections made so far

    @contextlib.contextmanager
    def watch(self) -> Iterator[Waiter]:
        """A waiter the hub sets on every change, for as long as the block runs."""
        waiter = Waiter()
        self._waiters.add(waiter)
        try:
            yield waiter
        finally:
            self._waiters.discard(waiter)

    def changed(self) -> None:
        self.changes += 1
        for waiter in list(self._waiters):
            waiter.set()

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[None]:
        """The hub's background work (the LISTEN connection on PostgreSQL) for the app's life."""
        if self._connect_args is not None:
            self._tasks.spawn(self._listen(self._connect_args), name="channel-listen")
        try:
            yield
        finally:
            await self._tasks.cancel_all()

    async def _listen(self, args: dict[str, Any]) -> None:
        delay = 0.5
        while True:
            try:
                await self._listen_once(args)
                delay = 0.5
            except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError, TimeoutError) as exc:
                log.warning("config notifications: LISTEN connection failed: %s", exc)
            self.listening = False
            await asyncio.sleep(random.uniform(0, delay))  # full jitter
            delay = min(delay * 2, RECHECK)

    async def _listen_once(self, args: dict[str, Any]) -> None:
        settings = {**args.get("server_settings", {}), "application_name": LISTEN_APPLICATION}
        connection = await asyncpg.connect(**(args | {"server_settings": settings, "timeout": 10}))
        try:
            lost = asyncio.Event()
            connection.add_termination_listener(lambda _connection: lost.set())
            await connection.add_listener(NOTIFY_CHANNEL, self._on_notify)
            self.listening, self.listens = True, self.listens + 1
            self.changed()  # whatever was missed while not listening
            while not lost.is_set():
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(LISTEN_PROBE):
                        await lost.wait()
                if not lost.is_set():
                    await connection.fetchval("SELECT 1", timeout=10)
        finally:
            with contextlib.suppress(Exception):
                await connection.close(timeout=2)

    def _on_notify(self, _connection: Any, _pid: int, _channel: str, payload: str) -> None:
        if payload != self.replica:  # our own commits woke our channels already
            self.changed()


def _asyncpg_args(engine: AsyncEngine) -> dict[str, Any] | None:
    """asyncpg.connect's arguments for the app's database, as SQLAlchemy's dialect makes
    them from the URL (its own options dropped); None unless it is PostgreSQL via asyncpg."""
    if engine.dialect.name != "postgresql" or engine.dialect.driver != "asyncpg":
        return None
    _, kwargs = engine.dialect.create_connect_args(engine.url)  # asyncpg: keywords only
    for sqlalchemy_only in ("prepared_statement_cache_size", "prepared_statement_name_func"):
        kwargs.pop(sqlalchemy_only, None)
    return dict(kwargs)


def _session_class(hub: ChangeHub, notify: str | None) -> type[Session]:
    """A Session subclass for one app whose listeners report config changes to `hub`."""

    class ChangeTrackingSession(Session):
        pass

    def mark(session: Session) -> None:
        session.info[_CHANGED] = True
        if notify is not None and not session.info.get(_NOTIFIED):
            session.info[_NOTIFIED] = True
            session.connection().exec_driver_sql(notify)

    def after_flush(session: Session, _context: UOWTransaction) -> None:
        if not session.info.get(_CHANGED) and _flush_matters(session):
            mark(session)

    def do_orm_execute(state: ORMExecuteState) -> None:
        if not state.session.info.get(_CHANGED) and _statement_matters(state):
            mark(state.session)

    def after_commit(session: Session) -> None:
        changed = session.info.pop(_CHANGED, False)
        session.info.pop(_NOTIFIED, None)
        if changed:
            hub.changed()

    def forget(session: Session, *_args: Any) -> None:
        session.info.pop(_CHANGED, None)
        session.info.pop(_NOTIFIED, None)

    event.listen(ChangeTrackingSession, "after_flush", after_flush)
    event.listen(ChangeTrackingSession, "do_orm_execute", do_orm_execute)
    event.listen(ChangeTrackingSession, "after_commit", after_commit)
    event.listen(ChangeTrackingSession, "after_rollback", forget)
    return ChangeTrackingSession


def _flush_matters(session: Session) -> bool:
    for obj in session.new:
        if type(obj) in INSERTS_MATTER:
            return True
    for obj in session.deleted:
        if type(obj) in SNAPSHOT_COLUMNS:
            return True
    for obj in session.dirty:
        columns = SNAPSHOT_COLUMNS.get(type(obj))
        if columns and any(_modified(obj, column) for column in columns):
            return True
    return False


def _modified(obj: object, column: str) -> bool:
    return attributes.get_history(obj, column).has_changes()


def _statement_matters(state: ORMExecuteState) -> bool:
    """A bulk UPDATE or DELETE (no unit of work sees those) of a snapshot table."""
    if not (state.is_update or state.is_delete):
        return False
    mapper = state.bind_mapper
    if mapper is None or mapper.class_ not in SNAPSHOT_COLUMNS:
        return False
    statement = state.statement
    if isinstance(statement, Delete) or not isinstance(statement, Update):
        return True
    values = getattr(statement, "_values", None)
    if not values:
        return True  # cannot tell which columns: assume it matters
    columns = SNAPSHOT_COLUMNS[mapper.class_]
    return any(getattr(key, "key", key) in columns for key in values)
