"""A real control plane for the browser tests: uvicorn on 127.0.0.1 serving `create_app`, on a
fresh SQLite database copied from a template migrated once per session.

The settings are development mode with public_url = the server's own http://127.0.0.1:PORT, so
the browser's Origin header is one the CSRF check accepts (Chromium keeps `Secure` cookies on
loopback over plain http, so the `__Host-` session cookie works as it would over https).
"""

from __future__ import annotations

import asyncio
import shutil
import socket
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import uvicorn

from control.db import migrate
from control.db.engine import create_engine
from control.main import create_app
from control.settings import Settings
from tests.control.helpers import FAST_HASH


def sqlite_url(path: Path) -> str:
    return f"sqlite+aiosqlite:///{path}"


async def _migrate(url: str) -> None:
    engine = create_engine(url)
    try:
        await migrate.upgrade(engine)
    finally:
        await engine.dispose()


def migrated_template(directory: Path) -> Path:
    """A migrated SQLite file (on a thread of its own: sync Playwright owns this one's loop)."""
    path = directory / "template.db"
    with ThreadPoolExecutor(1) as pool:
        pool.submit(asyncio.run, _migrate(sqlite_url(path))).result()
    return path


@dataclass(frozen=True)
class ControlPlane:
    url: str
    data_dir: Path


@contextmanager
def control_plane(
    template: Path, data_dir: Path, sock: socket.socket | None = None, **overrides: Any
) -> Iterator[ControlPlane]:
    """Serve a control plane on a copy of `template` until the block ends (on `sock` if given,
    bound to 127.0.0.1 beforehand, e.g. to register its URL elsewhere first; with further
    settings `overrides`)."""
    database = data_dir / "control.db"
    shutil.copyfile(template, database)
    if sock is None:
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
    url = f"http://127.0.0.1:{sock.getsockname()[1]}"
    settings = Settings(
        mode="development",
        database_url=sqlite_url(database),
        data_dir=data_dir,
        public_url=url,
        password_hash=FAST_HASH,
        login_limit_account="1000/minute",
        login_limit_ip="1000/minute",
        **overrides,
    )
    server = uvicorn.Server(
        uvicorn.Config(create_app(settings), log_level="warning", lifespan="on", access_log=False)
    )
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, name="uvicorn-web")
    thread.start()
    try:
        _wait_started(server, thread)
        yield ControlPlane(url, data_dir)
    finally:
        server.should_exit = True
        thread.join(timeout=20)
        sock.close()


def _wait_started(server: uvicorn.Server, thread: threading.Thread) -> None:
    deadline = time.monotonic() + 20
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the control plane did not start")
        time.sleep(0.02)
