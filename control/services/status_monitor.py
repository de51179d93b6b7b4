"""The status work that runs for an app's lifetime, beside its requests (started by the
lifespan in control/main.py):

- the sweeper, every `status_sweep_interval` seconds: silent subjects lose their heartbeat
  (control/services/status.py, `sweep`), old traffic buckets are pruned;
- the readiness checks, every `health_check_interval` seconds (none when 0)
  (control/services/health_checks.py).

Each loop survives its own failures (a database that is briefly away, say; or a bug, logged
with its traceback): it tries again next round. Every replica runs both; their work is idempotent.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable

from sqlalchemy.exc import SQLAlchemyError

from common.tasks import TaskSet
from control.runtime import Runtime
from control.services import health_checks, status

log = logging.getLogger(__name__)


class StatusMonitor:
    def __init__(self, rt: Runtime) -> None:
        self._rt = rt
        self._tasks = TaskSet()

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[None]:
        settings = self._rt.settings
        async with health_checks.make_client(settings) as client:
            self._tasks.spawn(
                _every(settings.status_sweep_interval, "status sweep", self._sweep),
                name="status-sweep",
            )
            if settings.health_check_interval > 0:
                self._tasks.spawn(
                    _every(
                        settings.health_check_interval,
                        "readiness checks",
                        lambda: health_checks.check_all(self._rt, client),
                    ),
                    name="health-checks",
                )
            try:
                yield
            finally:
                await self._tasks.cancel_all()

    async def _sweep(self) -> None:
        result = await status.sweep(self._rt)
        if result.silenced or result.pruned:
            log.info(
                "status sweep: %d went silent, %d traffic buckets pruned",
                result.silenced,
                result.pruned,
            )


async def _every(interval: float, what: str, work: Callable[[], Awaitable[object]]) -> None:
    while True:
        await asyncio.sleep(interval)
        try:
            await work()
        except* (SQLAlchemyError, OSError) as group:
            log.warning("%s failed, retrying in %g s: %s", what, interval, group.exceptions[0])
        except* Exception:
            # A bug, not weather: say so loudly, but keep the loop (status must not freeze).
            log.exception("%s failed unexpectedly, retrying in %g s", what, interval)
