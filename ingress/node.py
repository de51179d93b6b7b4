"""The running node's state: one frozen snapshot of the configuration, swapped whole.

`Node` is what the public listeners see (`ingress.public.gateway.Gateway`): `route` reads
the current snapshot's routing table, `lease` asks the agent pool. A reload builds the next
`Snapshot` completely, then `swap` replaces one reference; a request that already has its
route keeps it, and the next request sees the new table.

`is_revoked` (the QUIC listener's and the agent sessions' check) reads the current snapshot's
revocations: in control mode those of the control plane's last snapshot; standalone, none.
"""

from __future__ import annotations

from dataclasses import dataclass

from common.transport import PeerIdentity
from ingress.agents import AgentPool, Lease
from ingress.public.limits import HttpLimits
from ingress.public.tls import Issued
from ingress.routing import Route, RoutingTable
from ingress.settings import IngressSettings


@dataclass(frozen=True, slots=True)
class Revocations:
    """Agent certificates refused here: by serial, or every certificate of an identity."""

    serials: frozenset[int] = frozenset()
    identities: frozenset[str] = frozenset()  # "<org id>/<agent id>"

    def covers(self, peer: PeerIdentity) -> bool:
        if peer.serial in self.serials:
            return True
        return bool(self.identities) and f"{peer.org}/{peer.name}" in self.identities


@dataclass(frozen=True, slots=True)
class Snapshot:
    """Everything derived from one version of the configuration."""

    settings: IngressSettings
    table: RoutingTable
    limits: HttpLimits
    revoked: Revocations = Revocations()
    certificates: tuple[Issued, ...] = ()  # the control plane's HTTPS certificates

    @classmethod
    def build(
        cls,
        settings: IngressSettings,
        revoked: Revocations = Revocations(),
        certificates: tuple[Issued, ...] = (),
    ) -> Snapshot:
        """Derive the routing table and HTTP limits.

        Raises:
            ValueError: two services claim the same host and path prefix.
        """
        limits = settings.limits
        http = HttpLimits(
            max_header_bytes=limits.max_header_bytes,
            header_timeout=limits.header_timeout,
            keepalive_timeout=limits.keepalive_timeout,
            max_head_size=limits.max_head_size,
            response_head_timeout=limits.response_head_timeout,
        )
        return cls(settings, RoutingTable.build(settings.services), http, revoked, certificates)


class Node:
    """The current snapshot and the agent pool; the public listeners' `Gateway`."""

    __slots__ = ("_pool", "_snapshot")

    def __init__(self, snapshot: Snapshot, pool: AgentPool) -> None:
        self._snapshot = snapshot
        self._pool = pool

    @property
    def snapshot(self) -> Snapshot:
        return self._snapshot

    @property
    def pool(self) -> AgentPool:
        return self._pool

    def settings(self) -> IngressSettings:
        return self._snapshot.settings

    def http_limits(self) -> HttpLimits:
        return self._snapshot.limits

    def swap(self, snapshot: Snapshot) -> None:
        """Make `snapshot` the current one (one reference; nothing else changes here)."""
        self._snapshot = snapshot

    def is_revoked(self, peer: PeerIdentity) -> bool:
        """Whether the agent with this certificate is refused (and dropped if connected)."""
        return self._snapshot.revoked.covers(peer)

    def route(self, host: str, path: str) -> Route | None:
        return self._snapshot.table.lookup(host, path)

    async def lease(self, service: str) -> Lease:
        return await self._pool.lease(service)


def pin_running(old: IngressSettings, new: IngressSettings) -> IngressSettings:
    """`new`, but with the node name and tunnel of `old`: those are bound into the running
    QUIC listener and its certificate, so a reload cannot change them."""
    return new.model_copy(update={"node": old.node, "tunnel": old.tunnel})


def restart_needed(old: IngressSettings, new: IngressSettings) -> list[str]:
    """The settings that changed but take effect only when the process restarts."""
    changed = []
    if new.tunnel != old.tunnel:
        changed.append("tunnel")
    if new.node != old.node:
        changed.append("node")
    if _listen(old.http) != _listen(new.http):
        changed.append("http.listen")
    if _listen(old.https) != _listen(new.https):
        changed.append("https.listen")
    if _listen(old.admin) != _listen(new.admin):
        changed.append("admin.listen")
    return changed


def _listen(listener: object) -> str | None:
    return getattr(listener, "listen", None)
