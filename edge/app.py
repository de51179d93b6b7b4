"""The edge agent's composition root: one `TaskGroup` owns everything the process runs.

- logs (`common.logs.configure`), the `OriginPool`, the `OriginProxy` and the `Supervisor`,
  wired through the `Orchestrator` that holds the current configuration;
- SIGHUP (or, with `watch`, a change of the file) → reload: the file is read and checked
  (certificates included) before anything changes; an invalid file keeps the running
  configuration, and the log says why;
- SIGTERM/SIGINT → graceful stop: every tunnel sends DRAIN and its streams in flight get up to
  `drain_grace` seconds, then the origin pool closes and `run()` returns 0. A second signal
  stops at once;
- SIGUSR1 → one log line per ingress node with its status.

Control mode (`control` given, docs/enrollment.md): the ingress nodes and the services come
from the control plane's snapshots (edge/controlled.py), the rest from the file. Before the
supervisor starts, the snapshot stored by the last run is applied (a restart while the control
plane is down dials and serves at once); without one the agent dials nothing until the first
snapshot. A snapshot goes through the same `Orchestrator.apply` as a reload: a new node is
dialled, a removed one drained and dropped, the others untouched. The control channel
(common/channel) and the certificate renewal run in the agent's task group.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import Iterator, Mapping
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING

from common import logs
from common.config import ConfigError
from edge.counters import Counters
from edge.orchestrator import Orchestrator, ReloadRefused
from edge.origin import OriginPool
from edge.origin_proxy import OriginProxy
from edge.settings import (
    ControlledEdgeSettings,
    EdgeSettings,
    LogSettings,
    check_files,
    load_settings,
)
from edge.supervisor import Supervisor

if TYPE_CHECKING:
    from common.channel import AgentConfig, ChannelClient, StatusParts
    from common.channel import Snapshot as Received
    from common.enroll import Started
    from common.pki import TlsFiles

log = logging.getLogger("kokoa.edge.app")

STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)


def load_checked(
    path: Path, overlay: Mapping[str, object] | None = None, *, controlled: bool = False
) -> EdgeSettings:
    """Load the file at `path` (with the enrollment's `overlay`; `controlled`: in control
    mode) and check the files it names.

    Raises:
        ConfigError: invalid, or a certificate, key or CA file will not do.
    """
    settings = load_settings(path, overlay, controlled=controlled)
    problems = check_files(settings)
    if problems:
        raise ConfigError(str(path), problems)
    return settings


class EdgeApp:
    """One edge agent process; `await run()` until a stop signal (or `stop()`)."""

    def __init__(
        self,
        config: Path,
        settings: EdgeSettings,
        *,
        agent_version: str = "unknown",
        watch: float | None = None,
        overlay: Mapping[str, object] | None = None,
        control: Started | None = None,
    ) -> None:
        self.config = config
        self._overlay = overlay  # enrolled: identity and certificate (docs/enrollment.md)
        self._renewer = control.renewer() if control else None
        self.orchestrator = Orchestrator(settings, agent_version=agent_version)
        self.pool = OriginPool()
        self.counters = Counters()  # per service, for the control channel's status
        self.proxy = OriginProxy(
            self.pool, self.orchestrator.services, agent=settings.agent, counters=self.counters
        )
        snapshot = self.orchestrator.current
        self.supervisor = Supervisor(
            self.orchestrator.tunnel_options,
            self.proxy.serve,
            snapshot.backoff,
            drain_grace=settings.drain_grace,
        )
        self.orchestrator.attach(self.supervisor)
        self.supervisor.apply(settings.ingress)
        self._control_config: AgentConfig | None = None  # of the last snapshot applied
        self.channel = self._channel(control, settings, agent_version) if control else None
        self._watch = watch
        self._stop = asyncio.Event()
        self._force = asyncio.Event()
        self._reload = asyncio.Event()

    def stop(self) -> None:
        """Begin the graceful stop (the second call: stop at once)."""
        if self._stop.is_set():
            self._force.set()
        self._stop.set()

    def request_reload(self) -> None:
        self._reload.set()

    async def run(self) -> int:
        """Serve until stopped; 0 once drained."""
        settings = self.orchestrator.current.settings
        _configure_logs(settings.log)
        log.info("edge agent starting", extra={"agent": settings.agent, "config": str(self.config)})
        if self.channel is not None:
            await self.channel.restore()
        with self._signals():
            try:
                async with asyncio.TaskGroup() as group:
                    supervising = group.create_task(self.supervisor.run(), name="supervisor")
                    helpers = [group.create_task(self._reloads(), name="reloads")]
                    if self._renewer is not None:
                        renewing = self._renewer.run(_certificate_renewed)
                        helpers.append(group.create_task(renewing, name="certificate-renewal"))
                    if self.channel is not None:
                        channel = self.channel.run()
                        helpers.append(group.create_task(channel, name="control-channel"))
                    if self._watch is not None:
                        watching = self._watch_file(self._watch)
                        helpers.append(group.create_task(watching, name="watch-config"))
                    await self._stop.wait()
                    await self._shutdown(group, supervising)
                    for task in helpers:
                        task.cancel()
            finally:
                await self.pool.aclose()
        log.info("edge agent stopped")
        return 0

    async def reload(self) -> bool:
        """Re-read the configuration file and apply it; on any problem keep the running one."""
        try:
            controlled_mode = isinstance(self.orchestrator.current.settings, ControlledEdgeSettings)
            settings = load_checked(self.config, self._overlay, controlled=controlled_mode)
            if self._control_config is not None:  # the nodes and services stay the snapshot's
                from edge import controlled

                assert isinstance(settings, ControlledEdgeSettings)
                settings = controlled.settings_for(settings, self._control_config)
            before = self.orchestrator.current.settings.log
            snapshot = await self.orchestrator.apply(settings)
        except (ConfigError, ReloadRefused) as exc:
            log.error("reload refused; keeping the running configuration", extra=_why(exc))
            return False
        if snapshot.settings.log != before:
            _configure_logs(snapshot.settings.log)
        return True

    # ---- control mode ----------------------------------------------------------------------

    def _channel(
        self, control: Started, settings: EdgeSettings, agent_version: str
    ) -> ChannelClient[AgentConfig]:
        # Imported here: a standalone agent never loads the channel (nor websockets, httpx).
        from common.channel import AgentConfig, ChannelClient, RetryPolicy

        backoff = settings.channel
        return ChannelClient(
            url=control.client.url,
            state=control.state,
            kind="agent",
            model=AgentConfig,
            apply=self.apply_snapshot,
            report=self.status_report,
            software=f"kokoa {agent_version}",
            ca_file=control.ca_file,
            policy=RetryPolicy(initial=backoff.backoff_initial, cap=backoff.backoff_max),
        )

    async def apply_snapshot(self, received: Received[AgentConfig]) -> None:
        """Swap in the nodes and services of a snapshot from the control plane.

        Raises:
            SnapshotRejected: it does not validate; the running configuration stays.
        """
        from common.channel import SnapshotRejected
        from edge import controlled

        current = self.orchestrator.current.settings
        assert isinstance(current, ControlledEdgeSettings)  # control mode loads these
        settings = controlled.settings_for(current, received.config)
        try:
            await self.orchestrator.apply(settings)
        except ReloadRefused as exc:
            raise SnapshotRejected(str(exc)) from None
        self._control_config = received.config
        nodes = [node.name for node in settings.ingress]
        log.info(
            "snapshot applied",
            extra={"version": received.version, "nodes": nodes, "services": settings.service_names},
        )

    def status_report(self) -> StatusParts:
        """The agent's part of a control-channel status message."""
        from edge import controlled

        config = self._control_config
        node_ids = {node.name: str(node.id) for node in config.ingress} if config else {}
        services = list(self.orchestrator.current.settings.service_names)
        return controlled.report(self.supervisor.status(), node_ids, self.counters, services)

    def log_status(self) -> None:
        for status in self.supervisor.status():
            fields = asdict(status)
            fields["node"] = fields.pop("name")  # `name` is taken in a LogRecord
            log.info("node status", extra=fields)

    async def _shutdown(self, group: asyncio.TaskGroup, supervising: asyncio.Task[None]) -> None:
        grace = self.orchestrator.current.settings.drain_grace
        log.info("draining tunnels", extra={"grace": grace})
        drain = self.supervisor.drain("agent shutting down", grace)
        draining = group.create_task(drain, name="drain")
        forced = group.create_task(self._force.wait(), name="force")
        await asyncio.wait([draining, forced], return_when=asyncio.FIRST_COMPLETED)
        if not draining.done():
            log.warning("second stop signal: closing every tunnel now")
            supervising.cancel()
            draining.cancel()
        forced.cancel()
        await asyncio.wait([draining, forced, supervising])

    async def _reloads(self) -> None:
        while True:
            await self._reload.wait()
            self._reload.clear()
            log.info("reloading configuration", extra={"config": str(self.config)})
            await self.reload()

    async def _watch_file(self, every: float) -> None:
        """Reload when the file's modification time or size changes (polled)."""
        seen = _stamp(self.config)
        while True:
            await asyncio.sleep(every)
            stamp = _stamp(self.config)
            if stamp != seen:
                seen = stamp
                self.request_reload()

    @contextlib.contextmanager
    def _signals(self) -> Iterator[None]:
        loop = asyncio.get_running_loop()
        handlers = {signal.SIGHUP: self.request_reload, signal.SIGUSR1: self.log_status}
        handlers |= dict.fromkeys(STOP_SIGNALS, self.stop)
        for sig, handler in handlers.items():
            loop.add_signal_handler(sig, handler)
        try:
            yield
        finally:
            for sig in handlers:
                loop.remove_signal_handler(sig)


def _certificate_renewed(tls: TlsFiles) -> None:
    """Nothing to swap: every dial reads the certificate files, so new tunnels use the
    renewed one and tunnels already up keep theirs."""
    log.debug("new tunnels will use the renewed certificate", extra={"cert": str(tls.cert)})


def _configure_logs(settings: LogSettings) -> None:
    logs.configure(settings.level, settings.format)
    # aioquic logs every handshake and close at INFO as "quic"; our own lines say what matters.
    quic = logging.DEBUG if settings.level == "debug" else logging.WARNING
    logging.getLogger("quic").setLevel(quic)


def _stamp(path: Path) -> tuple[int, int] | None:
    try:
        stat = path.stat()
    except OSError:
        return None
    return stat.st_mtime_ns, stat.st_size


def _why(exc: ConfigError | ReloadRefused) -> dict[str, object]:
    if isinstance(exc, ConfigError):
        return {"config": exc.source, "problems": [f"{f}: {r}" for f, r in exc.problems]}
    return {"reason": str(exc)}
