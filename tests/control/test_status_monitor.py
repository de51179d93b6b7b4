"""The status monitor's loops keep running through failures: a database error is weather (a
warning), anything else a bug (logged with its traceback) — neither stops the loop."""

from __future__ import annotations

import asyncio
import logging

import pytest
from sqlalchemy.exc import OperationalError

from control.services.status_monitor import _every


async def test_a_loop_outlives_its_failures(caplog: pytest.LogCaptureFixture) -> None:
    calls = 0
    third = asyncio.Event()

    async def work() -> None:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise OperationalError("SELECT 1", {}, Exception("database is away"))
        if calls == 2:
            raise KeyError("a bug")
        third.set()

    with caplog.at_level(logging.WARNING, logger="control.services.status_monitor"):
        async with asyncio.TaskGroup() as group:
            task = group.create_task(_every(0.01, "test work", work))
            async with asyncio.timeout(5):
                await third.wait()
            task.cancel()
    assert calls >= 3
    messages = [(r.levelname, r.getMessage()) for r in caplog.records]
    assert messages[0][0] == "WARNING" and "database is away" in messages[0][1]
    assert messages[1] == ("ERROR", "test work failed unexpectedly, retrying in 0.01 s")
    assert caplog.records[1].exc_info is not None
