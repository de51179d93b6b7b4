"""The control channel's client: one WebSocket to the control plane, kept up for ever.

`ChannelClient.run()` dials `<control URL>/api/v1/channel` (wss://, or ws:// to a loopback
control plane; TLS trust as enrollment: `--control-ca` or the system store), answers the
challenge with a hello signed by the tunnel key of the state directory, and once welcomed runs
two tasks in one group:

- receive: each snapshot is judged (`protocol.judge`), handed to `apply` (which validates and
  swaps; `SnapshotRejected` → nack and the old configuration stays), stored as
  `snapshot.json`, then acked;
- report: a `status` message every `heartbeat_interval`, the first once the first snapshot was
  handled.

However the channel ends, it is dialled again after a backoff with full jitter
(common/backoff.py); a 4403 (revoked or disabled) is logged as an error and retried
with a cap of 5 minutes. Traffic never waits for the channel: it runs on the last snapshot.

`restore()` applies the snapshot an earlier run stored, before the process listens, so that a
restart while the control plane is down serves at once.
"""

from __future__ import annotations

import asyncio
import logging
import random
import ssl
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Generic

from cryptography.hazmat.primitives import serialization
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidURI
from websockets.typing import Subprotocol

from common import pki
from common.backoff import Backoff, BackoffPolicy
from common.channel import messages
from common.channel.messages import (
    MAX_MESSAGE,
    PATH,
    PROTOCOL_ERROR,
    SUBPROTOCOL,
    ChannelProtocolError,
    Kind,
    SnapshotMessage,
    Welcome,
)
from common.channel.protocol import (
    Challenged,
    ChannelProtocol,
    Decision,
    Offered,
    Refused,
    Running,
    Welcomed,
    classify_close,
    judge,
)
from common.channel.snapshot import (
    C,
    IngressConfig,
    Snapshot,
    SnapshotRejected,
    decode,
    from_document,
)
from common.channel.status import StatusParts
from common.enroll.client import check_control_url, tls_context
from common.enroll.lifetime import urgent_after
from common.enroll.proof import sign_channel
from common.enroll.state import StateDir

log = logging.getLogger("kokoa.channel")

Apply = Callable[[Snapshot[C]], Awaitable[None]]
Report = Callable[[], StatusParts]
PING_INTERVAL = PING_TIMEOUT = 10.0  # seconds (websockets' pings)
HANDSHAKE_TIMEOUT = 15.0  # seconds from dialling to the welcome


def channel_url(control_url: str) -> str:
    """`wss://…/api/v1/channel` for an https:// control URL (ws:// for loopback http://).

    Raises:
        ValueError: see `common.enroll.client.check_control_url`.
    """
    url = check_control_url(control_url)
    scheme, rest = url.split("://", 1)
    return f"{'wss' if scheme == 'https' else 'ws'}://{rest}{PATH}"


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """When to dial the control channel again (common/backoff.py): full jitter up to
    min(cap, initial * 2**n) after the n-th failure in a row, up to `forbidden_cap` after a
    4403 (revoked or disabled: retrying will not help soon, but an operator may fix it); the
    sequence starts again once a channel stayed up `reset_after` seconds."""

    initial: float = 0.5
    cap: float = 30.0
    forbidden_cap: float = 300.0
    reset_after: float = 30.0

    def __post_init__(self) -> None:
        if not 0 < self.initial <= self.cap <= self.forbidden_cap:
            raise ValueError("need 0 < initial <= cap <= forbidden_cap")

    @property
    def backoff(self) -> BackoffPolicy:
        return BackoffPolicy(self.initial, self.cap, 2.0, self.reset_after)


def _utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True, slots=True)
class _Ended:
    """How one channel ended: the server's close code (None: never opened or no close frame)."""

    code: int | None
    reason: str
    opened: bool = False
    by_us: bool = False  # we closed it (the server broke the protocol, or a bug of ours)


class _Closed(Exception):
    """The server closed the channel (the receive loop saw its end)."""


class ChannelClient(Generic[C]):
    """Keeps the control channel of one node or agent; see the module docstring.

    Args:
        url: the control plane (`--control`).
        state: the state directory (tunnel key and certificate; `snapshot.json`).
        kind: "ingress" or "agent".
        model: the config model of that kind (`IngressConfig`, `AgentConfig`).
        apply: validates and swaps a snapshot in; raises `SnapshotRejected` to refuse it.
        report: the process's part of a status message.
        software: "kokoa <version>".
        ca_file: trust only this CA for the control plane (default: the system store).
    """

    def __init__(
        self,
        *,
        url: str,
        state: StateDir,
        kind: Kind,
        model: type[C],
        apply: Apply[C],
        report: Report,
        software: str,
        ca_file: Path | None = None,
        policy: RetryPolicy = RetryPolicy(),
        clock: Callable[[], float] = time.monotonic,
        now: Callable[[], datetime] = _utcnow,
        rand: Callable[[], float] = random.random,
    ) -> None:
        self.url = channel_url(url)
        self._ssl: ssl.SSLContext | None = None
        if self.url.startswith("wss://"):
            self._ssl = tls_context(ca_file)
        self._state = state
        self.kind: Kind = kind
        self._model: type[C] = model
        self._apply: Apply[C] = apply
        self._report = report
        self.software = software
        self._policy = policy
        self._retry = Backoff(policy.backoff, clock=clock, rand=rand)
        self._now = now
        self.started_at = now()
        self.running: Snapshot[C] | None = None
        self.welcome: Welcome | None = None  # of the channel open now, if any
        self._problems: dict[str, str] = {}  # our own: a refused snapshot, a failed write
        self._refusal: Refused | None = None

    # ---- before listening ------------------------------------------------------------------

    async def restore(self) -> Snapshot[C] | None:
        """Apply the snapshot stored by an earlier run, if there is a usable one."""
        path = str(self._state.snapshot_path)
        try:
            document = self._state.load_snapshot()
            if document is None:
                log.info("no stored snapshot; waiting for the control plane", extra={"path": path})
                return None
            snapshot = from_document(document, self._model)
            self._check_owner(snapshot)
            await self._apply(snapshot)
        except (OSError, ValueError, SnapshotRejected, pki.PkiError) as exc:
            log.error(
                "the stored snapshot cannot be used; waiting for the control plane",
                extra={"path": path, "error": str(exc)},
            )
            return None
        except Exception:  # a bug of ours: start without it rather than not at all
            log.exception("applying the stored snapshot failed", extra={"path": path})
            return None
        self.running = snapshot
        log.info(
            "configuration restored from the stored snapshot",
            extra={"version": snapshot.version, "issued_at": snapshot.issued_at.isoformat()},
        )
        return snapshot

    def _check_owner(self, snapshot: Snapshot[C]) -> None:
        """Refuse a stored snapshot made for another node or agent than the one our
        certificate names (the state directory enrolled again as another, and a crash before
        the old snapshot was dropped; a directory copied from another host).

        Raises:
            SnapshotRejected: it is another's.
            common.pki.PkiError: our certificate cannot be read.
        """
        config = snapshot.config
        owner = config.node.id if isinstance(config, IngressConfig) else config.agent.id
        mine = pki.identity_from_certificate(self._state.certificate()).name
        if str(owner) != mine:
            what = "node" if isinstance(config, IngressConfig) else "agent"
            raise SnapshotRejected(f"it is another {what}'s ({owner}), not ours ({mine})")

    # ---- the channel, for ever -------------------------------------------------------------

    async def run(self) -> None:
        """Hold the channel until cancelled: dial, serve, back off, dial again."""
        while True:
            try:
                ended = await self._channel()
            except Exception as exc:  # a bug of ours must never take the data plane down
                log.exception("the control channel failed")
                ended = _Ended(None, f"internal error: {exc!r}", by_us=True)
            verdict = classify_close(None if ended.by_us else ended.code)
            delay = self._retry.failed(
                cap=self._policy.forbidden_cap if verdict.forbidden else None
            )
            refusal, self._refusal = self._refusal, None
            fields: dict[str, Any] = {"control": self.url, "code": ended.code}
            fields |= {"reason": ended.reason, "retry_in": round(delay, 3)}
            if refusal is not None:
                fields |= {"refusal": refusal.code, "detail": refusal.detail}
            level = verdict.level
            if not ended.opened and not verdict.forbidden and self._retry.attempt > 1:
                level = logging.INFO  # still unreachable: said once already
            what = verdict.what if ended.opened or ended.code else "cannot open the control channel"
            if ended.by_us:
                what = "control channel closed"
            log.log(level, what, extra=fields)
            await asyncio.sleep(delay)

    async def _channel(self) -> _Ended:
        options: dict[str, Any] = {"ssl": self._ssl} if self._ssl is not None else {}
        try:
            async with connect(
                self.url,
                subprotocols=[Subprotocol(SUBPROTOCOL)],
                max_size=MAX_MESSAGE,
                ping_interval=PING_INTERVAL,
                ping_timeout=PING_TIMEOUT,
                open_timeout=HANDSHAKE_TIMEOUT,
                close_timeout=5.0,
                user_agent_header=self.software.replace(" ", "/"),
                **options,
            ) as ws:
                return await self._serve(ws)
        except (OSError, TimeoutError, InvalidHandshake, InvalidURI) as exc:
            return _Ended(None, f"{type(exc).__name__}: {exc}")
        finally:
            self.welcome = None

    async def _serve(self, ws: ClientConnection) -> _Ended:
        protocol = ChannelProtocol(self.kind)
        opened = False
        ended: _Ended | None = None
        try:
            async with asyncio.timeout(HANDSHAKE_TIMEOUT):
                self.welcome = await self._handshake(ws, protocol)
            opened = True
            self._retry.connected()
            interval = self.welcome.heartbeat_interval
            log.info("control channel open", extra={"control": self.url, "interval": interval})
            handled = asyncio.Event()  # the first snapshot was acked or nacked
            async with asyncio.TaskGroup() as group:
                group.create_task(self._receive(ws, protocol, handled), name="channel-receive")
                group.create_task(self._status_loop(ws, interval, handled), name="channel-status")
        except* ChannelProtocolError as group:
            ended = _Ended(PROTOCOL_ERROR, str(group.exceptions[0]), opened, by_us=True)
        except* TimeoutError:
            ended = _Ended(None, f"no welcome within {HANDSHAKE_TIMEOUT:g} s")
        except* pki.PkiError as group:
            ended = _Ended(None, f"the tunnel certificate cannot be used: {group.exceptions[0]}")
        except* (ConnectionClosed, _Closed):
            pass
        if ended is None:
            return _Ended(ws.close_code, ws.close_reason or "", opened)
        if ended.code == PROTOCOL_ERROR:
            log.error("the control plane broke the channel protocol", extra={"error": ended.reason})
            await ws.close(PROTOCOL_ERROR, ended.reason.encode()[:123].decode(errors="ignore"))
        else:
            await ws.close()
        return ended

    async def _handshake(self, ws: ClientConnection, protocol: ChannelProtocol) -> Welcome:
        while True:
            event = protocol.receive(await ws.recv())
            if isinstance(event, Challenged):
                await ws.send(messages.encode(self._hello(event.nonce)))
            elif isinstance(event, Welcomed):
                return event.welcome
            elif isinstance(event, Refused):
                self._refusal = event

    def _hello(self, nonce: str) -> dict[str, Any]:
        cert = self._state.certificate()
        key = self._state.key()
        pem = cert.public_bytes(serialization.Encoding.PEM).decode()
        signature = sign_channel(key, nonce, cert.serial_number)
        version = None if self.running is None else self.running.version
        return messages.hello(self.kind, pem, signature, self.software, version)

    async def _receive(
        self, ws: ClientConnection, protocol: ChannelProtocol, handled: asyncio.Event
    ) -> None:
        async for frame in ws:
            event = protocol.receive(frame)
            if isinstance(event, Offered):
                await self._offer(ws, event.snapshot)
                handled.set()
            elif isinstance(event, Refused):
                self._refusal = event
        raise _Closed()

    # ---- snapshots -------------------------------------------------------------------------

    async def _offer(self, ws: ClientConnection, message: SnapshotMessage) -> None:
        """Apply, store and ack `message`, or nack it (the old configuration stays)."""
        version = message.version
        running = self.running
        meta = None if running is None else Running(running.version, running.issued_at)
        decision = judge(version, message.issued_at, meta)
        if decision is Decision.STALE:
            log.info("stale snapshot ignored", extra={"version": version})
            return
        if decision is Decision.SAME:
            await ws.send(messages.encode(messages.ack(version)))
            return
        try:
            snapshot = decode(message, self._model)
            await self._apply(snapshot)
        except SnapshotRejected as exc:
            error = str(exc)
        except Exception as exc:  # a bug of ours must not cost the channel
            log.exception("applying a snapshot failed", extra={"version": version})
            error = f"internal error: {exc!r}"
        else:
            self._accepted(snapshot)
            await ws.send(messages.encode(messages.ack(version)))
            log.info("snapshot applied and acked", extra={"version": version})
            return
        self._problems["nack"] = f"snapshot {version[:12]} refused: {error}"
        log.error(
            "snapshot refused; still running the previous configuration",
            extra={"version": version, "error": error},
        )
        await ws.send(messages.encode(messages.nack(version, error)))

    def _accepted(self, snapshot: Snapshot[C]) -> None:
        self.running = snapshot
        self._problems.pop("nack", None)
        try:
            self._state.save_snapshot(snapshot.document)
        except OSError as exc:
            self._problems["store"] = f"snapshot not stored: {exc}"
            log.error(
                "the snapshot could not be stored; a restart will not find it",
                extra={"path": str(self._state.snapshot_path), "error": str(exc)},
            )
        else:
            self._problems.pop("store", None)

    # ---- status ----------------------------------------------------------------------------

    async def _status_loop(
        self, ws: ClientConnection, interval: float, handled: asyncio.Event
    ) -> None:
        await handled.wait()
        while True:
            await ws.send(messages.encode(self.status()))
            await asyncio.sleep(interval)

    def status(self) -> dict[str, Any]:
        """The status message to send now."""
        parts: StatusParts
        try:
            parts = self._report()
        except Exception:  # a bug of ours: still say we are alive
            log.exception("building the status report failed")
            parts = StatusParts(problems=["internal error while building the status report"])
        problems = [*parts.problems, *self._problems.values(), *self._certificate_problems()]
        running = self.running
        return messages.status(
            sent_at=self._now(),
            started_at=self.started_at,
            software=self.software,
            snapshot_version=None if running is None else running.version,
            services=[service.to_json() for service in parts.services],
            connections=[peer.to_json() for peer in parts.connections],
            problems=problems,
        )

    def _certificate_problems(self) -> list[str]:
        try:
            cert = self._state.certificate()
        except pki.PkiError as exc:
            return [f"the tunnel certificate cannot be read: {exc}"]
        now = self._now()
        left = (cert.not_valid_after_utc - now).total_seconds()
        if left <= 0:
            return ["the tunnel certificate has expired: enroll again with a new token"]
        if now >= urgent_after(cert):
            return [f"the tunnel certificate expires in {_duration(left)} and is not renewed"]
        return []


def _duration(seconds: float) -> str:
    if seconds >= 3600:
        return f"{seconds / 3600:.0f} h"
    if seconds >= 60:
        return f"{seconds / 60:.0f} min"
    return f"{seconds:.0f} s"
