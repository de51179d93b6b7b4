"""The agent's current configuration: one frozen, versioned snapshot, swapped atomically.

As in cloudflared's orchestrator: `apply()` refuses a version that is not newer and a change
that cannot be made at run time, builds everything the new snapshot needs *before* touching
the running one, swaps one reference, and only then tells the tunnels.

- The origin proxy reads `services()` once per stream, so a stream in flight keeps the
  `OriginService` it started with, and the next stream sees the new table.
- A changed service list is claimed on every live tunnel (SERVICES) and in the next HELLOs.
- A changed ingress list goes to `Supervisor.apply` (only the nodes that changed move).
- TLS files, heartbeat interval and `max_streams` reach new connections; backoff and
  `drain_grace` apply from the next use.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass

from common.backoff import BackoffPolicy
from edge.origin_config import OriginService
from edge.settings import EdgeSettings
from edge.supervisor import Supervisor
from edge.tunnel import TunnelOptions

log = logging.getLogger("kokoa.edge.orchestrator")


class ReloadRefused(Exception):
    """The new configuration cannot replace the running one (it is kept as it is)."""


@dataclass(frozen=True, slots=True)
class Snapshot:
    """One version of the configuration and what is derived from it."""

    version: int
    settings: EdgeSettings
    services: Mapping[str, OriginService]
    tunnel_options: TunnelOptions
    backoff: BackoffPolicy


def build_snapshot(version: int, settings: EdgeSettings, *, agent_version: str) -> Snapshot:
    """Everything the running agent needs from `settings`, computed once."""
    tunnel_options = TunnelOptions(
        agent=settings.agent,
        tls=settings.tls.files,
        services=settings.service_names,
        version=agent_version,
        max_streams=settings.max_streams,
        heartbeat_interval=settings.heartbeat_interval,
        hello_timeout=settings.hello_timeout,
        drain_grace=settings.drain_grace,
    )
    b = settings.backoff
    policy = BackoffPolicy(b.initial, b.max, b.multiplier, b.reset_after)
    return Snapshot(version, settings, settings.service_map, tunnel_options, policy)


class Orchestrator:
    """Holds the current `Snapshot`; `apply` replaces it; the supervisor is attached later."""

    def __init__(self, settings: EdgeSettings, *, agent_version: str = "unknown") -> None:
        self._agent_version = agent_version
        self._current = build_snapshot(1, settings, agent_version=agent_version)
        self._supervisor: Supervisor | None = None

    @property
    def current(self) -> Snapshot:
        return self._current

    def services(self) -> Mapping[str, OriginService]:
        """The service table of the current snapshot (the origin proxy's lookup)."""
        return self._current.services

    def tunnel_options(self) -> TunnelOptions:
        """What the next connection attempt uses."""
        return self._current.tunnel_options

    def attach(self, supervisor: Supervisor) -> None:
        self._supervisor = supervisor

    async def apply(self, settings: EdgeSettings, *, version: int | None = None) -> Snapshot:
        """Make `settings` the running configuration.

        Args:
            version: the snapshot's version (from the control plane); it must be newer than
                the current one. None (a file reload) takes the next number.

        Raises:
            ReloadRefused: a stale version, or a change that needs a restart (the agent id).
        """
        old = self._current
        number = old.version + 1 if version is None else version
        if number <= old.version:
            raise ReloadRefused(f"version {number} is not newer than {old.version}")
        if settings.agent != old.settings.agent:
            raise ReloadRefused(
                f"agent cannot change from {old.settings.agent!r} to {settings.agent!r} at run "
                "time (it is the certificate's identity): restart the agent"
            )
        new = build_snapshot(number, settings, agent_version=self._agent_version)
        self._current = new  # the swap: streams starting from here see the new table
        await self._propagate(old, new)
        log.info("configuration applied", extra={"version": number, **_diff(old, new)})
        return new

    async def _propagate(self, old: Snapshot, new: Snapshot) -> None:
        supervisor = self._supervisor
        if supervisor is None:
            return
        supervisor.drain_grace = new.settings.drain_grace
        if new.backoff != old.backoff:
            supervisor.set_policy(new.backoff)
        if new.settings.ingress != old.settings.ingress:
            supervisor.apply(new.settings.ingress)
        if new.settings.service_names != old.settings.service_names:
            await supervisor.update_services(new.settings.service_names)


def _diff(old: Snapshot, new: Snapshot) -> dict[str, object]:
    """What changed, for the log line."""
    before, after = old.settings, new.settings
    changed = [
        name for name in EdgeSettings.model_fields if getattr(before, name) != getattr(after, name)
    ]
    return {"changed": changed}
