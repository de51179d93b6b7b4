"""A node or an agent on the real control channel, for the browser tests: enrolled through the
API, then a `websockets` client (sync, on a thread of its own, since sync Playwright owns the
main thread's loop) that does the handshake and sends a `status` message every `interval`
seconds with counters that grow, until the block ends or the control plane closes it."""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime
from types import TracebackType
from typing import Any

from websockets.exceptions import ConnectionClosed
from websockets.sync.client import ClientConnection, connect

from tests.control.enroll_support import Owner
from tests.control.test_channel import SUBPROTOCOL, Enrolled, channel_url, enroll, hello
from tests.web.api import ApiUser

TIMEOUT = 10.0


def enrolled(owner: ApiUser, org: str, kind: str, subject: dict[str, Any]) -> Enrolled:
    """Enroll `subject` (kind `ingress` or `agent`) as `kokoa … run --token` would."""
    return enroll(Owner(owner.http, org), kind, subject)


@dataclass
class Peer:
    kind: str  # "agent" (a node's peer) or "ingress" (an agent's)
    id: str
    name: str
    rtt_ms: float | None


@dataclass
class Reporter:
    base_url: str
    got: Enrolled
    services: list[str]
    peers: list[Peer] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    interval: float = 1.0
    requests_per_report: int = 20
    closed: threading.Event = field(default_factory=threading.Event)

    def __post_init__(self) -> None:
        self.started = datetime.now(UTC).isoformat()
        self._stop = threading.Event()
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self._thread: threading.Thread | None = None
        self._version: str | None = None
        self.reports = 0

    def __enter__(self) -> Reporter:
        self._thread = threading.Thread(target=self._run, name=f"reporter-{self.got.id}")
        self._thread.start()
        assert self._ready.wait(TIMEOUT), "no channel within the timeout"
        if self._error is not None:
            self.stop()  # raises it
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def stop(self) -> None:
        """Close the channel (the control plane marks the subject offline at once)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=TIMEOUT)
            assert not self._thread.is_alive(), "the reporter did not stop"
        if self._error is not None:
            error, self._error = self._error, None
            raise error

    def _run(self) -> None:
        try:
            with connect(channel_url(self.base_url), subprotocols=[SUBPROTOCOL]) as ws:
                self._handshake(ws)
                self._ready.set()
                self._report(ws)
        except ConnectionClosed:
            pass  # the control plane closed it (the subject was disabled)
        except BaseException as exc:  # handed to the test's thread
            self._error = exc
        finally:
            self._ready.set()
            self.closed.set()

    def _handshake(self, ws: ClientConnection) -> None:
        challenge = json.loads(ws.recv(timeout=TIMEOUT))
        ws.send(json.dumps(hello(self.got, challenge["nonce"])))
        welcome = json.loads(ws.recv(timeout=TIMEOUT))
        assert welcome["type"] == "welcome", welcome
        self._take(ws, json.loads(ws.recv(timeout=TIMEOUT)))
        ws.send(json.dumps(self._status()))  # the first report right after the first ack

    def _report(self, ws: ClientConnection) -> None:
        """A status every `interval`; meanwhile new snapshots are read and acked."""
        for _ in range(int(120 / self.interval)):  # bounded: no test runs that long
            try:
                self._take(ws, json.loads(ws.recv(timeout=self.interval)))
                continue
            except TimeoutError:
                pass
            if self._stop.is_set():
                return
            ws.send(json.dumps(self._status()))

    def _take(self, ws: ClientConnection, message: dict[str, Any]) -> None:
        if message.get("type") == "snapshot":
            self._version = message["version"]
            ws.send(json.dumps({"type": "ack", "version": message["version"]}))

    def _status(self) -> dict[str, Any]:
        self.reports += 1
        requests = self.requests_per_report * self.reports
        return {
            "type": "status",
            "sent_at": datetime.now(UTC).isoformat(),
            "snapshot_version": self._version,
            "software": "kokoa 2.0.0-test",
            "started_at": self.started,
            "services": [
                {"name": name, "requests": requests, "bytes_out": 2500 * requests}
                for name in self.services
            ],
            "connections": [
                {
                    "kind": p.kind,
                    "id": p.id,
                    "name": p.name,
                    "connected_since": self.started,
                    "rtt_ms": p.rtt_ms,
                }
                for p in self.peers
            ],
            "problems": self.problems,
        }
