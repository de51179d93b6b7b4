"""The ingress node's composition root: build everything from the settings, run it in one
task group, reload on SIGHUP, stop gracefully on SIGTERM/SIGINT.

Start-up: QUIC listener for agents → public listeners (HTTPS, then HTTP, which redirects to
HTTPS when both are configured) → admin listener. Any of them failing to start is an error
before the node reports ready.

SIGHUP: read and validate the file; if it is invalid, keep running the old configuration and
log why. Otherwise build the next snapshot (routing table, limits), load the HTTPS
certificates, and only then swap: requests in flight keep the route they have, connected
agents are re-evaluated against the new service list. Listener addresses, the node name and
the tunnel certificate are bound at start; a change to them is logged as needing a restart.

SIGTERM/SIGINT: DRAIN to every agent, drain the public listeners for `drain_grace` seconds
(no new connections; requests in flight finish), close the agent connections with SHUTDOWN,
stop the admin listener, exit 0.

Control mode (`control` given, docs/enrollment.md): the services, the revoked agent
certificates and HTTPS certificates come from the control plane's snapshots
(ingress/controlled.py), the rest from the file (its HTTPS certificates too: served beside the
snapshot's, which win for a name both cover). Before listening, the snapshot stored by the last
run is applied (so a restart while the control plane is down serves at once); without one the
node starts with no service and is not ready until the first snapshot. The control channel
(common/channel) and the certificate renewal then run in the node's task group. A snapshot goes
through the same swap as SIGHUP, then every agent whose certificate it revokes is disconnected
at once, and its HTTPS certificates (loaded before anything is swapped: one that does not load
refuses the snapshot) serve the next handshakes; a SIGHUP keeps the snapshot's services,
revocations and certificates.
"""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from common import logs, pki
from common.config import ConfigError
from common.metrics import make_registry
from common.quic import QuicServer, serve
from ingress.admin import AdminApp, AdminServer, Readiness
from ingress.agents import AgentPool
from ingress.metrics import IngressMetrics
from ingress.node import Node, Snapshot, pin_running, restart_needed
from ingress.public.server import PublicServer
from ingress.public.tls import Loaded, SniCertificates, clear_scratch
from ingress.settings import (
    CertificatePair,
    IngressSettings,
    Listener,
    load_settings,
    with_services,
)
from ingress.tunnel_server import TunnelServer

if TYPE_CHECKING:
    from common.channel import ChannelClient, IngressConfig, StatusParts
    from common.channel import Snapshot as Received
    from common.enroll import Started

log = logging.getLogger(__name__)


class IngressApp:
    """One ingress node process; `await run()` returns when it has stopped."""

    def __init__(
        self,
        config: Path,
        settings: IngressSettings,
        *,
        overlay: Mapping[str, object] | None = None,
        control: Started | None = None,
    ) -> None:
        self._config = config
        self._overlay = overlay  # enrolled: identity and tunnel certificate (docs/enrollment.md)
        self._renewer = control.renewer() if control else None
        self.registry = make_registry()
        self.metrics = IngressMetrics(self.registry)
        self.pool = AgentPool(gauge=self.metrics.agents_connected)
        self.node = Node(Snapshot.build(settings), self.pool)
        self.tunnel = TunnelServer(self.pool, self.node.settings, self.node.is_revoked)
        self.channel = self._channel(control, settings) if control else None
        self.public = PublicServer(
            self.node, self.metrics, node=settings.node, limits=self.node.http_limits
        )
        self._quic: QuicServer | None = None
        self._servers: dict[str, asyncio.Server] = {}
        self._ports: dict[str, int] = {}
        self._sni: SniCertificates | None = None
        self._issued_tls = Loaded()  # the snapshot's HTTPS certificates, loaded
        # Where their PEM is written to load it: beside snapshot.json, which holds the same keys.
        self._tls_scratch = tls_scratch(config, control)
        self._applying = asyncio.Lock()
        self._admin: AdminServer | None = None
        self._stop = asyncio.Event()

    # ---- running -------------------------------------------------------------------------

    async def run(self) -> None:
        """Start every listener, serve until SIGTERM/SIGINT (or `stop()`), then drain."""
        self._clear_tls_scratch()
        if self.channel is not None:
            await self.channel.restore()
        try:
            await self._start()
        except BaseException:
            await self._close_started()
            raise
        self._install_signals()
        try:
            async with asyncio.TaskGroup() as group:
                if self._admin is not None:
                    group.create_task(self._admin.serve(), name="admin")
                helpers = []
                if self._renewer is not None:
                    renewing = self._renewer.run(self._certificate_renewed)
                    helpers.append(group.create_task(renewing, name="certificate-renewal"))
                if self.channel is not None:
                    helpers.append(group.create_task(self.channel.run(), name="control-channel"))
                log.info("ingress node ready", extra=self._started_fields())
                await self._stop.wait()
                for task in helpers:
                    task.cancel()
                await self._shutdown()
        finally:
            self._remove_signals()

    def stop(self) -> None:
        self._stop.set()

    def _clear_tls_scratch(self) -> None:
        """Remove the PEM files (keys among them) a process killed while loading left."""
        try:
            clear_scratch(self._tls_scratch)
        except OSError as exc:  # each load still makes a private directory of its own
            log.error("cannot remove leftover key files", extra={"path": str(exc.filename)})

    async def _start(self) -> None:
        settings = self.node.settings()
        tunnel = settings.tunnel
        self._quic = await serve(
            tunnel.host,
            tunnel.port,
            tunnel.tls,
            self.tunnel.handle,
            is_revoked=self.node.is_revoked,
        )
        self._ports["tunnel"] = self._quic.port
        if settings.https is not None:
            self._sni = SniCertificates(_pairs(settings.https.certificates), self._issued_tls)
            await self._listen("https", settings.https, self._sni, None)
        if settings.http is not None:
            await self._listen("http", settings.http, None, self._ports.get("https"))
        if settings.admin is not None:
            app = AdminApp(self.registry, self.readiness)
            self._admin = AdminServer(app, settings.admin.host, settings.admin.port)
            self._admin.bind()
            self._ports["admin"] = self._admin.port

    async def _listen(
        self, name: str, listener: Listener, tls: SniCertificates | None, redirect: int | None
    ) -> None:
        server = await self.public.listen(
            listener.host, listener.port, tls=tls, redirect_to_https_port=redirect
        )
        self._servers[name] = server
        self._ports[name] = _port(server)

    async def _close_started(self) -> None:
        """Release what a failed start had opened."""
        for server in self._servers.values():
            server.close()
        if self._quic is not None:
            self._quic.close()
            await self._quic.wait_closed(grace=0.5)

    async def _shutdown(self) -> None:
        grace = self.node.settings().drain_grace
        log.info("ingress node stopping", extra={"grace": grace})
        async with asyncio.TaskGroup() as group:
            group.create_task(self.tunnel.drain("node shutting down"), name="drain-agents")
            group.create_task(self.public.drain(grace), name="drain-public")
        if self._quic is not None:
            self._quic.close()
            await self._quic.wait_closed(grace=2.0)
        if self._admin is not None:
            self._admin.stop()
        log.info("ingress node stopped")

    def _certificate_renewed(self, tls: pki.TlsFiles) -> None:
        """New agent connections get the renewed certificate; open ones keep theirs."""
        if self._quic is None:
            return
        try:
            self._quic.update_tls(tls)
        except pki.PkiError as exc:
            log.error("renewed certificate not loaded; still serving the previous one",
                      extra={"error": str(exc)})  # fmt: skip

    # ---- state for the admin listener ----------------------------------------------------

    def readiness(self) -> Readiness:
        listeners = {"tunnel": self._quic is not None and not self._stop.is_set()}
        listeners |= {name: server.is_serving() for name, server in self._servers.items()}
        return Readiness(
            node=self.node.settings().node,
            config_loaded=self.channel is None or self.channel.running is not None,
            listeners=listeners,
            agents=len(self.pool.agents()),
        )

    @property
    def ports(self) -> dict[str, int]:
        """The bound ports (useful when the configuration asked for port 0)."""
        return dict(self._ports)

    def _started_fields(self) -> dict[str, object]:
        settings = self.node.settings()
        return {"node": settings.node, "ports": self.ports, "services": len(settings.services)}

    # ---- reload --------------------------------------------------------------------------

    def reload(self) -> bool:
        """Re-read the configuration file; keep the running one if it is invalid."""
        old = self.node.settings()
        controlled_mode = self.channel is not None
        try:
            new = load_settings(self._config, self._overlay, controlled=controlled_mode)
            if controlled_mode:  # the services come from the control plane's snapshot
                new = with_services(new, [s.model_dump() for s in old.services])
            current = self.node.snapshot
            snapshot = Snapshot.build(pin_running(old, new), current.revoked, current.certificates)
            if self._sni is not None and new.https is not None:
                self._sni.update(_pairs(new.https.certificates))
        except (ConfigError, ValueError, OSError) as exc:
            log.error(
                "configuration reload refused; still running the previous one",
                extra={"config": str(self._config), "error": str(exc)},
            )
            return False
        for what in restart_needed(old, new):
            log.warning("a reload cannot change this; restart to apply", extra={"setting": what})
        self.node.swap(snapshot)
        self.tunnel.reconfigure()
        if new.log != old.log:
            logs.configure(new.log.level, new.log.format)
        log.info("configuration reloaded", extra={"services": len(new.services)})
        return True

    # ---- control mode ----------------------------------------------------------------------

    def _channel(self, control: Started, settings: IngressSettings) -> ChannelClient[IngressConfig]:
        # Imported here: a standalone node never loads the channel (nor websockets, httpx).
        from common.channel import ChannelClient, IngressConfig, RetryPolicy, software

        backoff = settings.channel
        return ChannelClient(
            url=control.client.url,
            state=control.state,
            kind="ingress",
            model=IngressConfig,
            apply=self.apply_snapshot,
            report=self.status_report,
            software=software(),
            ca_file=control.ca_file,
            policy=RetryPolicy(initial=backoff.backoff_initial, cap=backoff.backoff_max),
        )

    async def apply_snapshot(self, received: Received[IngressConfig]) -> None:
        """Swap in the services, revocations and HTTPS certificates of a snapshot from the
        control plane.

        Raises:
            SnapshotRejected: it does not validate, or a certificate does not load; the
                running configuration stays.
        """
        from ingress import controlled

        config = received.config
        async with self._applying:  # one at a time: each loads against the last one's
            settings = self.node.settings()
            snapshot = controlled.build(settings, config)
            issued = self._issued_tls
            if snapshot.certificates != self.node.snapshot.certificates:
                # Off the event loop: loading the certificates that changed (all of them at
                # start) takes ~1.5 ms each, and traffic must not wait for it.
                issued = await asyncio.to_thread(
                    controlled.load_certificates, snapshot, issued, self._tls_scratch
                )
                if self.node.settings() is not settings:  # the file was reloaded meanwhile
                    snapshot = controlled.build(self.node.settings(), config)
            self._swap(snapshot, issued)
        revoked = len(snapshot.revoked.serials)
        fields = {"version": received.version, "services": len(config.services)}
        fields |= {"certificates": len(snapshot.certificates)}
        log.info("snapshot applied", extra=fields | {"revoked_serials": revoked})

    def _swap(self, snapshot: Snapshot, issued: Loaded) -> None:
        """Serve `snapshot` and its loaded certificates: nothing here can fail or wait."""
        self.node.swap(snapshot)
        self._issued_tls = issued
        if self._sni is not None:
            self._sni.install(issued)
        self.tunnel.revoke()
        self.tunnel.reconfigure()

    def status_report(self) -> StatusParts:
        """The node's part of a control-channel status message."""
        from ingress import controlled

        services = (service.name for service in self.node.settings().services)
        return controlled.report(self.metrics, self.tunnel.sessions, services)

    # ---- signals -------------------------------------------------------------------------

    def _install_signals(self) -> None:
        loop = asyncio.get_running_loop()
        loop.add_signal_handler(signal.SIGHUP, self.reload)
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self._on_stop_signal, sig)

    def _remove_signals(self) -> None:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGHUP, signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(sig)

    def _on_stop_signal(self, sig: signal.Signals) -> None:
        if self._stop.is_set():
            log.info("already stopping", extra={"signal": sig.name})
        self._stop.set()


def tls_scratch(config: Path, control: Started | None) -> Path:
    """`tls-tmp` in the state directory: the enrollment's, else the file's default one
    (`<config dir>/<config name>.state`, as `--state-dir` defaults to)."""
    root = control.state.root if control else config.resolve().parent / f"{config.stem}.state"
    return root / "tls-tmp"


def _pairs(certificates: tuple[CertificatePair, ...]) -> list[tuple[Path, Path]]:
    return [(pair.cert, pair.key) for pair in certificates]


def _port(server: asyncio.Server) -> int:
    return int(server.sockets[0].getsockname()[1])


async def run(
    config: Path,
    settings: IngressSettings,
    *,
    overlay: Mapping[str, object] | None = None,
    control: Started | None = None,
) -> None:
    """Run an ingress node with `settings` (read from `config`, re-read on SIGHUP; with
    `overlay` applied when enrolled, and `control` the enrollment: renewal, control channel)."""
    await IngressApp(config, settings, overlay=overlay, control=control).run()
