"""Keeps one tunnel up to every configured ingress node, each supervised on its own.

Every node has its own task in the supervisor's `TaskGroup`, running `attempt → serve → back
off → attempt …` forever: a node that is down, refuses us or fails in any way (even a bug of
ours) only ever affects its own task. Decisions are taken on the type of the `TunnelError`
(edge/tunnel_errors.py); the delay comes from a `Backoff` with full jitter, whose clock,
random source and sleep are injectable.

`apply(nodes)` changes the set of nodes at run time without touching the ones that stay: a
removed node's tunnel drains and stops, a new node starts, a node whose address changed is
replaced. `drain()` stops everything gracefully. `status()` describes each node for logs and
metrics.
"""

from __future__ import annotations

import asyncio
import enum
import logging
import random
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime

from common.backoff import Backoff, BackoffPolicy
from common.transport import TransportError
from edge.settings import IngressNode
from edge.tunnel import Connector, StreamHandler, Tunnel, TunnelOptions, TunnelState, quic_connector
from edge.tunnel_errors import (
    CredentialsError,
    Disconnected,
    HandshakeFailed,
    TunnelError,
    Unauthorized,
    WrongNode,
)

log = logging.getLogger("kokoa.edge.supervisor")

Sleep = Callable[[float], Awaitable[None]]


class NodeState(enum.StrEnum):
    CONNECTING = "connecting"
    CONNECTED = "connected"
    DRAINING = "draining"
    BACKING_OFF = "backing-off"
    STOPPED = "stopped"


@dataclass(frozen=True, slots=True)
class NodeStatus:
    """One supervised node, as logs and metrics show it."""

    name: str
    address: str
    state: NodeState
    rtt: float | None  # seconds
    last_error: str | None
    attempt: int  # failures in a row
    retry_in: float | None  # seconds until the next attempt, while backing off
    accepted: tuple[str, ...]
    in_flight: int
    connected_since: datetime | None = None  # while connected or draining


class _Node:
    """The supervision loop of one node."""

    def __init__(self, node: IngressNode, supervisor: Supervisor) -> None:
        self.node = node
        self.backoff = Backoff(supervisor.policy, clock=supervisor.clock, rand=supervisor.rand)
        self.tunnel: Tunnel | None = None
        self.task: asyncio.Task[None] | None = None
        self.last_error: str | None = None
        self.retry_at: float | None = None
        self.stopping = False
        self._sup = supervisor

    def status(self) -> NodeStatus:
        tunnel, clock = self.tunnel, self._sup.clock
        if self.stopping and self.task is not None and self.task.done():
            state = NodeState.STOPPED
        elif self.retry_at is not None:
            state = NodeState.BACKING_OFF
        elif tunnel is None or tunnel.state in (TunnelState.CONNECTING, TunnelState.CLOSED):
            state = NodeState.CONNECTING
        else:
            state = NodeState(tunnel.state.value)
        live = tunnel is not None and tunnel.state is not TunnelState.CLOSED
        return NodeStatus(
            name=self.node.name,
            address=self.node.address,
            state=state,
            rtt=tunnel.rtt if live and tunnel is not None else None,
            last_error=self.last_error,
            attempt=self.backoff.attempt,
            retry_in=None if self.retry_at is None else max(0.0, self.retry_at - clock()),
            accepted=tunnel.accepted if live and tunnel is not None else (),
            in_flight=tunnel.in_flight if tunnel is not None else 0,
            connected_since=tunnel.connected_since if live and tunnel is not None else None,
        )

    async def run(self) -> None:
        """Attempt, serve, back off, forever (until `stop`); never raises but cancellation."""
        while True:
            self.tunnel = tunnel = self._sup.make_tunnel(self.node, self.backoff.connected)
            try:
                await tunnel.run()
            except TunnelError as exc:
                delay = self._failed(exc)
            except Exception as exc:  # a bug of ours: log it, keep this node supervised
                log.exception("tunnel failed unexpectedly", extra={"node": self.node.name})
                self.last_error = f"internal error: {exc!r}"
                delay = self.backoff.failed()
            else:
                return  # our own drain closed it
            if self.stopping:  # set by stop() while the tunnel ran
                return
            self.retry_at = self._sup.clock() + delay
            try:
                await self._sup.sleep(delay)
            finally:
                self.retry_at = None

    def _failed(self, exc: TunnelError) -> float:
        """Log the end of a connection or attempt by its type; the delay before the next."""
        self.last_error = f"{type(exc).__name__}: {exc}"
        severe = isinstance(exc, Unauthorized | CredentialsError | WrongNode)
        # A node that refuses only our claim (HELLO_ACK accepted none) may simply not know the
        # service yet: in control mode the node's snapshot and ours race. Our identity was
        # accepted, so back off as usual instead of straight to the cap.
        claims_only = isinstance(exc, Unauthorized) and bool(exc.rejected)
        delay = self.backoff.failed(to_cap=severe and not claims_only)
        fields: dict[str, object] = {"node": self.node.name, "error": type(exc).__name__}
        fields |= {"reason": str(exc), "retry_in": round(delay, 3)}
        if isinstance(exc, WrongNode):
            log.error("refusing the ingress node: its certificate is another's", extra=fields)
        elif severe:
            log.error("node refused us", extra=fields | _rejected(exc))
        elif isinstance(exc, Disconnected) and exc.drained:
            log.info("node drained; reconnecting", extra=fields)
        elif isinstance(exc, HandshakeFailed) and self.backoff.attempt > 1:
            log.info("node still unreachable", extra=fields)
        else:
            log.warning("connection to node lost", extra=fields)
        return delay

    async def stop(self, reason: str, grace: float) -> None:
        """Drain the live tunnel (at most `grace` seconds), then end the loop."""
        self.stopping = True
        tunnel, task = self.tunnel, self.task
        if tunnel is not None and tunnel.state in (TunnelState.CONNECTED, TunnelState.DRAINING):
            await tunnel.drain(reason, grace)
        if task is not None:
            task.cancel()
            await asyncio.wait([task])


def _rejected(exc: TunnelError) -> dict[str, object]:
    return {"rejected": exc.rejected} if isinstance(exc, Unauthorized) and exc.rejected else {}


class Supervisor:
    """Supervises one tunnel per ingress node; see the module docstring.

    Args:
        options: the `TunnelOptions` for the next attempt (read at every attempt, so a
            reload reaches new connections).
        handler: serves one stream the node opens (`OriginProxy.serve`).
        policy: the backoff policy (replace it with `set_policy`).
        connect: dials a node (default: QUIC).
        drain_grace: how long a removed node's streams in flight may take to finish.
        clock, sleep, rand: time and randomness, injectable for tests.
    """

    def __init__(
        self,
        options: Callable[[], TunnelOptions],
        handler: StreamHandler,
        policy: BackoffPolicy,
        *,
        connect: Connector = quic_connector,
        drain_grace: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
        sleep: Sleep = asyncio.sleep,
        rand: Callable[[], float] = random.random,
    ) -> None:
        self.policy = policy
        self.drain_grace = drain_grace
        self.clock = clock
        self.sleep = sleep
        self.rand = rand
        self._options = options
        self._handler = handler
        self._connect = connect
        self._nodes: dict[str, _Node] = {}
        self._wanted: dict[str, IngressNode] = {}
        self._group: asyncio.TaskGroup | None = None
        self._stopped = asyncio.Event()  # drain() began
        self._done = asyncio.Event()  # drain() finished

    def make_tunnel(self, node: IngressNode, on_connected: Callable[[], None]) -> Tunnel:
        return Tunnel(
            node,
            self._options(),
            handler=self._handler,
            connect=self._connect,
            on_connected=on_connected,
        )

    async def run(self) -> None:
        """Supervise the nodes `apply` set (before or during the run) until `drain()` is done."""
        async with asyncio.TaskGroup() as group:
            self._group = group
            self._reconcile()
            await self._done.wait()
        self._group = None

    def apply(self, nodes: Sequence[IngressNode]) -> None:
        """Supervise exactly `nodes`: start new ones, stop removed or changed ones, leave the
        others alone. Before `run()` it only records them; after `drain()` it does nothing."""
        self._wanted = {node.name: node for node in nodes}
        self._reconcile()

    def _reconcile(self) -> None:
        group = self._group
        if group is None or self._stopped.is_set():
            return
        wanted = self._wanted
        for name, current in list(self._nodes.items()):
            if wanted.get(name) != current.node:
                del self._nodes[name]
                stopping = current.stop("node removed", self.drain_grace)
                group.create_task(stopping, name=f"stop-{name}")
                log.info("node no longer supervised", extra={"node": name})
        for name, node in wanted.items():
            if name not in self._nodes:
                self._start(group, node)

    def set_policy(self, policy: BackoffPolicy) -> None:
        """Use `policy` for every node's next delays."""
        self.policy = policy
        for supervised in self._nodes.values():
            supervised.backoff.policy = policy

    def status(self) -> list[NodeStatus]:
        return [supervised.status() for supervised in self._nodes.values()]

    def tunnels(self) -> list[Tunnel]:
        """The current tunnel of every node (connected or not)."""
        return [s.tunnel for s in self._nodes.values() if s.tunnel is not None]

    async def update_services(self, services: Sequence[str]) -> None:
        """Claim `services` on every tunnel: SERVICES on live ones, HELLO on the next ones."""
        for tunnel in self.tunnels():
            try:
                await tunnel.update_services(services)
            except (TunnelError, TransportError) as exc:  # its run() reports the failure
                log.debug("SERVICES not sent", extra={"node": tunnel.node.name, "error": str(exc)})

    async def drain(self, reason: str, grace: float) -> None:
        """Stop reconnecting; drain every live tunnel at once (at most `grace`); end `run()`."""
        nodes, self._nodes = list(self._nodes.values()), {}
        self._stopped.set()  # no node starts from here on
        try:
            async with asyncio.TaskGroup() as group:
                for supervised in nodes:
                    group.create_task(supervised.stop(reason, grace), name="drain-node")
        finally:
            self._done.set()

    def _start(self, group: asyncio.TaskGroup, node: IngressNode) -> None:
        supervised = _Node(node, self)
        supervised.task = group.create_task(supervised.run(), name=f"node-{node.name}")
        self._nodes[node.name] = supervised
        log.info("supervising node", extra={"node": node.name, "address": node.address})
