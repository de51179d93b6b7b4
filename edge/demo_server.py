"""Serving the demo origin (`edge.demo_origin`) on uvicorn with httptools and websockets.

`server_config` is what `kokoa demo origin` runs; `running()` serves it inside the caller's
event loop (tests, local tools) on a port it picks.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import uvicorn

from common.tasks import TaskSet
from edge.demo_origin import DemoOrigin


def server_config(
    host: str,
    port: int,
    *,
    log_level: str = "info",
    log_config: bool = True,
    graceful_shutdown: int = 2,
) -> uvicorn.Config:
    """uvicorn settings for the demo: httptools for HTTP/1.1, websockets for `/ws`.

    `log_config=False` leaves the process's logging alone (for tests and embedding).
    """
    extra: dict[str, Any] = {} if log_config else {"log_config": None}
    return uvicorn.Config(
        DemoOrigin(),
        host=host,
        port=port,
        http="httptools",
        ws="websockets-sansio",
        lifespan="off",
        log_level=log_level,
        access_log=False,
        timeout_graceful_shutdown=graceful_shutdown,
        **extra,
    )


@dataclass(frozen=True, slots=True)
class RunningOrigin:
    host: str
    port: int

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"


@asynccontextmanager
async def running(host: str = "127.0.0.1", port: int = 0) -> AsyncIterator[RunningOrigin]:
    """Serve the demo origin in this event loop until the block ends (port 0: any free one)."""
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    config = server_config(host, port, log_level="warning", log_config=False, graceful_shutdown=1)
    server = uvicorn.Server(config)
    tasks = TaskSet()
    task = tasks.spawn(server.serve(sockets=[sock]), name="demo origin")
    try:
        while not server.started:
            if task.done():
                raise RuntimeError("the demo origin did not start") from task.exception()
            await asyncio.sleep(0.01)
        yield RunningOrigin(host, sock.getsockname()[1])
    finally:
        server.should_exit = True
        await asyncio.wait_for(asyncio.shield(task), 10)
        sock.close()
