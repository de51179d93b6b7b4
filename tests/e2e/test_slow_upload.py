"""Timeouts around a request body, through a real ingress node and agent (processes on
loopback), with small timeouts: the node's `response_head_timeout` is 1.5 s, the agent's
origin `read_timeout` 1 s.

Both wait for the response head only once the request body has been sent; while the body
is still flowing, each byte that moves keeps the exchange alive. So:

* a slow but steady upload that lasts several timeouts is answered 200, whether the client
  or the origin sets the pace;
* an upload that stops moving fails within about a timeout (408: the client stalled), and
  nothing stays in flight;
* an origin that takes the whole body and then stays silent gets its 504 a timeout after
  the body ended (the agent's, or the node's when the agent's is longer);
* an origin that answers before the body ends (413) is answered at once, as before.

The slow, silent and early origins are a small threaded server in the test process
(`Scripted`); the client-paced upload goes to the demo origin's `/sha256`.

Both timeouts start when the last body bytes are handed to the next hop, so what still waits
in the buffers beyond (the tunnel's ~2 MiB for the node, the kernel's socket buffers for the
agent: ~4 MiB on loopback) must be read by the origin within them. The origin-paced test
therefore reads slowly only for its first 3 s, not up to the end.
"""

from __future__ import annotations

import hashlib
import json
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import httptools
import httpx
import pytest
import yaml

from common.localrun import LOOPBACK, free_port
from tests.e2e.harness import Node, ServiceSpec, Topology, get, wait_for

KIB = 1 << 10
MIB = 1 << 20
HEAD_TIMEOUT = 1.5  # the node's response_head_timeout
READ_TIMEOUT = 1.0  # the agent's origin read_timeout
PIECE = 64 * KIB
SLOW_RATE = 2 * MIB  # bytes/s the scripted origin's /slow reads at…
SLOW_SECONDS = 3.0  # …for this long, then at full speed
DEMO = "demo.test"
SCRIPT = "script.test"  # the scripted origin; the agent's read timeout is READ_TIMEOUT
PATIENT = "patient.test"  # the same origin, with a longer agent read timeout
PATIENT_TIMEOUT = 3.0

pytestmark = pytest.mark.timeout(90)


@dataclass
class Seen:
    """What the scripted origin received on one connection."""

    target: str = ""
    body: int = 0
    complete: bool = False  # the whole body arrived
    closed: bool = False  # the agent closed the connection


@dataclass
class _Parts:
    url: bytes = b""
    head: bool = False
    body: int = 0
    complete: bool = False
    digest: Any = field(default_factory=hashlib.sha256)

    def on_url(self, url: bytes) -> None:
        self.url += url

    def on_headers_complete(self) -> None:
        self.head = True

    def on_body(self, body: bytes) -> None:
        self.body += len(body)
        self.digest.update(body)

    def on_message_complete(self) -> None:
        self.complete = True


@dataclass
class Scripted:
    """An origin on a thread per connection, by path:

    * `/slow` reads the body at `SLOW_RATE` bytes/s for `SLOW_SECONDS`, the rest at full
      speed (so that what waits in socket buffers when the agent has sent the last byte is
      read at once), then answers its sha256 and size;
    * `/silent` reads the whole body and never answers;
    * `/early` answers 413 as soon as it has the head, then reads and drops the rest (as
      servers do before closing, so that the answer is not lost to a reset).
    """

    sock: socket.socket = field(default_factory=socket.socket)
    seen: list[Seen] = field(default_factory=list)

    def __post_init__(self) -> None:
        # A small receive buffer (accepted sockets inherit it), so that little of a slowly
        # read body waits in the kernel once the agent has handed it over.
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 * KIB)
        self.sock.bind((LOOPBACK, 0))
        self.sock.listen(16)
        threading.Thread(target=self._accept, daemon=True).start()

    @property
    def port(self) -> int:
        return int(self.sock.getsockname()[1])

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        seen = Seen()
        self.seen.append(seen)
        conn.settimeout(30)
        with conn:
            try:
                self._exchange(conn, seen)
            except (OSError, httptools.HttpParserError):
                pass
            seen.closed = True

    def _exchange(self, conn: socket.socket, seen: Seen) -> None:
        parts = _Parts()
        parser = httptools.HttpRequestParser(parts)
        answered = False
        slow_until = time.monotonic() + SLOW_SECONDS
        while data := conn.recv(PIECE):
            parser.feed_data(data)
            seen.target, seen.body, seen.complete = parts.url.decode(), parts.body, parts.complete
            if seen.target == "/slow":
                if time.monotonic() < slow_until:
                    time.sleep(len(data) / SLOW_RATE)
                if parts.complete:
                    answer = json.dumps({"sha256": parts.digest.hexdigest(), "size": parts.body})
                    conn.sendall(respond(200, answer.encode()))
                    return
            elif seen.target == "/early" and parts.head and not answered:
                answered = True
                conn.sendall(respond(413, b"too large", b"Connection: close\r\n"))

    def close(self) -> None:
        self.sock.close()


def respond(status: int, body: bytes, extra: bytes = b"") -> bytes:
    head = b"HTTP/1.1 %d X\r\nContent-Length: %d\r\n%s\r\n" % (status, len(body), extra)
    return head + body


@pytest.fixture(scope="module")
def tunnel(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Topology, Node, Scripted]]:
    """The demo origin, the scripted origin, one ingress node and one agent."""
    scripted = Scripted()
    origin_port = free_port()
    demo = f"http://{LOOPBACK}:{origin_port}"
    script = f"http://{LOOPBACK}:{scripted.port}"
    topo = Topology(
        tmp_path_factory.mktemp("slow-upload"),
        [
            ServiceSpec("demo", (DEMO,), demo),
            ServiceSpec("script", (SCRIPT,), script),
            ServiceSpec("patient", (PATIENT,), script),
        ],
    )
    try:
        topo.start_demo_origin(origin_port)
        node = topo.add_node("ingress-1")
        topo.write_ingress(
            node, limits={"heartbeat_interval": 1.0, "response_head_timeout": HEAD_TIMEOUT}
        )
        path = topo.write_agent("agent-1")
        agent = yaml.safe_load(path.read_text())
        for service in agent["services"]:
            patient = service["name"] == "patient"
            service["read_timeout"] = PATIENT_TIMEOUT if patient else READ_TIMEOUT
        path.write_text(yaml.safe_dump(agent, sort_keys=False))
        topo.start_ingress(node)
        topo.start_agent("agent-1")
        wait_for(lambda: get(f"{demo}/")[0] == 200, "demo origin", 20, topo)
        for service in ("demo", "script", "patient"):
            topo.wait_agents(service, 1)
        yield topo, node, scripted
    finally:
        topo.stop_all()
        scripted.close()


def block() -> bytes:
    return bytes(range(256)) * (PIECE // 256)


@dataclass
class Paced:
    """A request body of `pieces` × `PIECE`, one piece every `interval` seconds."""

    pieces: int
    interval: float
    ended: float = 0.0  # monotonic time the last piece was handed over

    @property
    def size(self) -> int:
        return self.pieces * PIECE

    def __iter__(self) -> Iterator[bytes]:
        piece = block()
        for i in range(self.pieces):
            if i:
                time.sleep(self.interval)
            yield piece
        self.ended = time.monotonic()

    def sha256(self) -> str:
        digest = hashlib.sha256()
        for _ in range(self.pieces):
            digest.update(block())
        return digest.hexdigest()


def post(node: Node, host: str, target: str, body: Paced) -> httpx.Response:
    headers = {"Host": host, "Content-Length": str(body.size), "Accept": "application/json"}
    with httpx.Client(base_url=node.base, timeout=30) as http:
        return http.post(target, content=iter(body), headers=headers)


def in_flight(topo: Topology, node: Node) -> float:
    return topo.metric(node, "kokoa_ingress_in_flight")


# ---- a long upload that keeps moving ---------------------------------------------------------


def test_slow_steady_upload_outlasting_both_timeouts_is_answered(
    tunnel: tuple[Topology, Node, Scripted],
) -> None:
    topo, node, _ = tunnel
    body = Paced(pieces=64, interval=0.07)  # 4 MiB over 4.4 s: about three timeouts
    started = time.monotonic()
    response = post(node, DEMO, "/sha256", body)
    elapsed = time.monotonic() - started
    assert response.status_code == 200, response.text
    assert response.json() == {"sha256": body.sha256(), "size": body.size}
    assert elapsed > 2 * HEAD_TIMEOUT  # it really outlasted both timeouts
    topo.assert_alive()


def test_upload_paced_by_a_slow_origin_is_answered(
    tunnel: tuple[Topology, Node, Scripted],
) -> None:
    topo, node, _ = tunnel
    body = Paced(pieces=256, interval=0)  # 16 MiB as fast as the path takes them
    started = time.monotonic()
    response = post(node, SCRIPT, "/slow", body)
    elapsed = time.monotonic() - started
    assert response.status_code == 200, response.text
    answer = response.json()
    assert (answer["sha256"], answer["size"]) == (body.sha256(), body.size)
    assert elapsed > 2 * HEAD_TIMEOUT
    topo.assert_alive()


# ---- an upload that stops -------------------------------------------------------------------


def test_stalled_upload_fails_within_the_timeout_and_leaves_nothing_in_flight(
    tunnel: tuple[Topology, Node, Scripted],
) -> None:
    topo, node, _ = tunnel
    head = (
        f"POST /sha256 HTTP/1.1\r\nHost: {DEMO}\r\nAccept: application/json\r\n"
        f"Content-Length: {4 * MIB}\r\n\r\n"
    ).encode()
    with socket.create_connection((LOOPBACK, node.http), timeout=10) as sock:
        sock.sendall(head)
        for _ in range(8):  # half a MiB over 0.4 s, then nothing
            sock.sendall(block())
            time.sleep(0.05)
        stalled = time.monotonic()
        answer = sock.recv(65536)
        waited = time.monotonic() - stalled
        assert answer.startswith(b"HTTP/1.1 408 "), answer[:200]
        assert b"connection: close" in answer.lower()
        # The node's deadline (1.5 s after the last byte it passed on, checked a few times
        # a second) or the agent's (one to two read timeouts without a byte) ends it.
        assert HEAD_TIMEOUT * 0.6 <= waited <= 2 * READ_TIMEOUT + 1.0, waited
        wait_for(lambda: in_flight(topo, node) == 0, "nothing in flight", 5, topo)
        # The node drops what still comes for a moment, then closes the connection.
        sock.settimeout(5)
        while sock.recv(65536):
            pass
    request_id = json.loads(answer.split(b"\r\n\r\n", 1)[1])["request_id"]
    wait_for(lambda: request_id in topo.log("agent-1"), "the agent's access line", 5, topo)
    topo.assert_alive()


# ---- an origin that stays silent after the body -----------------------------------------------


@pytest.mark.parametrize(
    ("host", "timeout", "error"),
    [(SCRIPT, READ_TIMEOUT, "origin_timeout"), (PATIENT, HEAD_TIMEOUT, "agent_timeout")],
    ids=["agent-read-timeout", "node-response-head-timeout"],
)
def test_silent_origin_is_504_a_timeout_after_the_body(
    tunnel: tuple[Topology, Node, Scripted], host: str, timeout: float, error: str
) -> None:
    topo, node, scripted = tunnel
    before = len(scripted.seen)
    body = Paced(pieces=24, interval=0.1)  # 1.5 MiB over 2.3 s: longer than either timeout
    started = time.monotonic()
    response = post(node, host, "/silent", body)
    answered = time.monotonic()
    assert response.status_code == 504, response.text
    assert response.json()["error"] == error
    after_body = answered - body.ended
    assert answered - started > 2.0
    assert timeout * 0.9 <= after_body <= timeout + 1.0, after_body
    seen = scripted.seen[before:]
    assert [(s.target, s.body, s.complete) for s in seen] == [("/silent", body.size, True)]
    # The agent notices the node's reset only when it next touches the stream: it holds the
    # origin connection until its own read timeout (here 3 s for the patient service).
    wait_for(lambda: seen[0].closed, "the agent closes the origin connection", 10, topo)
    wait_for(lambda: in_flight(topo, node) == 0, "nothing in flight", 5, topo)


# ---- an origin that answers before the body ends ------------------------------------------------


def test_early_answer_during_the_upload_is_delivered(
    tunnel: tuple[Topology, Node, Scripted],
) -> None:
    topo, node, scripted = tunnel
    before = len(scripted.seen)
    head = (f"POST /early HTTP/1.1\r\nHost: {SCRIPT}\r\nContent-Length: {8 * MIB}\r\n\r\n").encode()
    stop = threading.Event()

    def send_slowly(sock: socket.socket) -> None:
        try:
            for _ in range(8 * MIB // PIECE):
                if stop.wait(0.05):
                    return
                sock.sendall(block())
        except OSError:
            pass  # the node closed the connection after its answer

    with socket.create_connection((LOOPBACK, node.http), timeout=10) as sock:
        sock.sendall(head + block())
        sender = threading.Thread(target=send_slowly, args=(sock,), daemon=True)
        started = time.monotonic()
        sender.start()
        try:
            answer = b""
            while b"too large" not in answer:
                data = sock.recv(65536)
                assert data, answer
                answer += data
            waited = time.monotonic() - started
        finally:
            stop.set()
            sender.join(5)
    assert answer.startswith(b"HTTP/1.1 413 "), answer[:200]
    assert waited < READ_TIMEOUT, waited  # at once, while the body was still coming
    seen = scripted.seen[before:]
    assert [(s.target, s.complete) for s in seen] == [("/early", False)]
    wait_for(lambda: in_flight(topo, node) == 0, "nothing in flight", 5, topo)
    topo.assert_alive()
