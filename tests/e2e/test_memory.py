"""Backpressure end to end: a big download to a slow reader and a big upload to a slow origin,
through one ingress node and one agent as real processes, keep each process's memory bounded.

A sampler thread reads the RSS of the ingress and the agent (and, for information, the demo
origin) every 100 ms; growth is measured from the RSS after a warm-up transfer, and must stay
within `BOUND` (64 MiB). Each test also checks that the slow side really set the pace, so the
bound is measured with every buffer on the path full.

Size: on this 2-core machine the tunnel carries about 15 MiB/s when the machine is idle (both
ends are CPU-bound in Python QUIC) and 4-5 MiB/s when other work takes most of the CPU, so
1 GiB cannot cross in under a minute at any reader speed. The slow side never goes faster
than 3 MiB/s, and the default size is `KOKOA_E2E_MEMORY_MIB=96` (32 s): a path that buffered
instead of pushing back would hold well over 64 MiB (measured: with the QUIC write watermark
disabled, the agent grows by 188 MiB on the 96 MiB download and the ingress by 135 MiB on
the upload, and both tests fail). Set it to 1024 for the issue's full 1 GiB run (about six
minutes per test); docs/ingress.md and docs/edge.md record such a run.
"""

from __future__ import annotations

import hashlib
import logging
import os
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

import httpx
import psutil
import pytest

from common.localrun import LOOPBACK, free_port
from edge.demo_origin import pattern_sha256
from tests.e2e.harness import Node, ServiceSpec, Topology, get, wait_for

MIB = 1 << 20
BOUND = 64 * MIB  # RSS growth allowed per process
SIZE = int(os.environ.get("KOKOA_E2E_MEMORY_MIB", "96")) * MIB
SLOW_RATE = 3 * MIB  # bytes/s of the slow side; the tunnel does ~15 MiB/s here when idle
WARM_UP = 16 * MIB
PIECE = 64 << 10
DEMO = "demo.test"
WATCHED = ("ingress-1", "agent-1")

pytestmark = [pytest.mark.slow, pytest.mark.timeout(120 + 2 * SIZE // SLOW_RATE)]

log = logging.getLogger(__name__)  # the measurements; see them with -o log_cli=true


@dataclass
class RssSampler:
    """RSS of some processes every `interval` seconds, in a thread, while in the block."""

    processes: dict[str, psutil.Process]
    interval: float = 0.1
    baseline: dict[str, int] = field(default_factory=dict)
    peak: dict[str, int] = field(default_factory=dict)
    samples: int = 0
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def __enter__(self) -> RssSampler:
        self.baseline = self.read()
        self.peak = dict(self.baseline)
        self._thread = threading.Thread(target=self._run, name="rss sampler", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        assert self._thread is not None
        self._thread.join(5)

    def growth(self, name: str) -> int:
        return self.peak[name] - self.baseline[name]

    def report(self, idle: dict[str, int]) -> str:
        """Per process: RSS idle → after the warm-up (baseline) + peak growth over it."""
        return (
            ", ".join(
                f"{name} {idle[name] / MIB:.1f} → {self.baseline[name] / MIB:.1f}"
                f" + {self.growth(name) / MIB:.1f} MiB"
                for name in self.processes
            )
            + f" ({self.samples} samples)"
        )

    def read(self) -> dict[str, int]:
        return {name: int(p.memory_info().rss) for name, p in self.processes.items()}

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            for name, rss in self.read().items():
                self.peak[name] = max(self.peak[name], rss)
            self.samples += 1


@pytest.fixture(scope="module")
def tunnel(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Topology, Node]]:
    """The demo origin, one ingress node and one agent."""
    origin_port = free_port()
    origin = f"http://{LOOPBACK}:{origin_port}"
    topo = Topology(tmp_path_factory.mktemp("memory"), [ServiceSpec("demo", (DEMO,), origin)])
    try:
        topo.start_demo_origin(origin_port)
        node = topo.add_node("ingress-1")
        topo.write_agent("agent-1")
        topo.start_ingress(node)
        topo.start_agent("agent-1")
        wait_for(lambda: get(f"{origin}/")[0] == 200, "demo origin", 20, topo)
        topo.wait_agents("demo", 1)
        yield topo, node
    finally:
        topo.stop_all()


def sampler(topo: Topology) -> RssSampler:
    return RssSampler({name: psutil.Process(topo.pid(name)) for name in (*WATCHED, "origin")})


def client(node: Node) -> httpx.Client:
    return httpx.Client(base_url=node.base, headers={"Host": DEMO}, timeout=30)


def assert_bounded(rss: RssSampler, idle: dict[str, int]) -> None:
    for name in WATCHED:
        assert rss.growth(name) <= BOUND, f"{name} grew over 64 MiB: {rss.report(idle)}"


# ---- download to a slow reader ------------------------------------------------------------


@dataclass
class Download:
    size: int = 0
    digest: str = ""
    expected: str = ""
    elapsed: float = 0.0
    waited: float = 0.0  # seconds the reader waited for data (its reads included)


def download(http: httpx.Client, size: int, rate: float | None) -> Download:
    """GET /bytes/{size}, `PIECE` at a time, sleeping after each as long as reading it at
    `rate` bytes/s would take (None: no sleep), so the reader is never faster than `rate`."""
    result = Download()
    digest = hashlib.sha256()
    started = time.monotonic()
    with http.stream("GET", f"/bytes/{size}") as response:
        assert response.status_code == 200
        result.expected = response.headers["x-sha256"]
        pieces = response.iter_raw(PIECE)
        while True:
            asked = time.monotonic()
            piece = next(pieces, None)
            result.waited += time.monotonic() - asked
            if piece is None:
                break
            digest.update(piece)
            result.size += len(piece)
            if rate is not None:
                time.sleep(len(piece) / rate)
    result.elapsed = time.monotonic() - started
    result.digest = digest.hexdigest()
    return result


def test_download_to_a_slow_reader_keeps_memory_bounded(tunnel: tuple[Topology, Node]) -> None:
    topo, node = tunnel
    idle = sampler(topo).read()
    with client(node) as http:
        warm = download(http, WARM_UP, rate=None)
        assert warm.digest == warm.expected == pattern_sha256(WARM_UP)
        with sampler(topo) as rss:
            slow = download(http, SIZE, rate=SLOW_RATE)
    topo.assert_alive()
    log.info(
        f"download {SIZE // MIB} MiB in {slow.elapsed:.1f}s (waited {slow.waited:.1f}s); "
        f"warm-up {WARM_UP / MIB / warm.elapsed:.1f} MiB/s; {rss.report(idle)}"
    )
    assert (slow.size, slow.digest) == (SIZE, slow.expected)
    assert slow.digest == pattern_sha256(SIZE)  # what the origin sent, computed here
    # The reader set the pace: data was there whenever it asked, so the tunnel was faster
    # and every buffer on the way was full (else this measured nothing: is the machine busy?).
    assert slow.waited <= 0.4 * slow.elapsed, (slow.waited, slow.elapsed)
    assert_bounded(rss, idle)


# ---- upload to a slow origin --------------------------------------------------------------


@dataclass
class Upload:
    answer: dict[str, object] = field(default_factory=dict)
    waited: float = 0.0  # seconds the origin waited for body bytes
    elapsed: float = 0.0
    sent: float = 0.0  # seconds until the client had handed its last byte to the kernel


def upload(http: httpx.Client, size: int, rate: float | None) -> Upload:
    """POST /sha256 with `size` bytes as fast as the path takes them; the origin reads at
    `rate` bytes/s (None: as fast as they arrive)."""
    result = Upload()
    block = bytes(range(256)) * (PIECE // 256)
    started = time.monotonic()

    def body() -> Iterator[bytes]:
        for _ in range(size // PIECE):
            yield block
        result.sent = time.monotonic() - started

    params = {} if rate is None else {"rate": int(rate)}
    headers = {"Content-Length": str(size)}
    # A path that buffered the body would keep the answer back for the origin's whole read.
    timeout = httpx.Timeout(30, read=30 + 2 * size / (rate or 1 << 30))
    response = http.post("/sha256", params=params, content=body(), headers=headers, timeout=timeout)
    result.elapsed = time.monotonic() - started
    assert response.status_code == 200, response.text
    result.answer = response.json()
    waited = result.answer.pop("waited", 0.0)  # there when `rate` was given
    assert isinstance(waited, int | float)
    result.waited = float(waited)
    return result


def test_upload_to_a_slow_origin_keeps_memory_bounded(tunnel: tuple[Topology, Node]) -> None:
    topo, node = tunnel
    expected = {"sha256": digest_of_blocks(SIZE), "size": SIZE}
    idle = sampler(topo).read()
    with client(node) as http:
        warm = upload(http, WARM_UP, rate=None)
        assert warm.answer == {"sha256": digest_of_blocks(WARM_UP), "size": WARM_UP}
        with sampler(topo) as rss:
            slow = upload(http, SIZE, rate=SLOW_RATE)
    topo.assert_alive()
    queued = (slow.elapsed - slow.sent) * SLOW_RATE  # what the origin still had to read
    log.info(
        f"upload {SIZE // MIB} MiB in {slow.elapsed:.1f}s (origin waited {slow.waited:.1f}s; "
        f"client done after {slow.sent:.1f}s, ~{queued / MIB:.1f} MiB queued on the path); "
        f"warm-up {WARM_UP / MIB / warm.elapsed:.1f} MiB/s; {rss.report(idle)}"
    )
    assert slow.answer == expected
    # The origin set the pace: the body was there whenever it asked (else, is the machine
    # busy?), so every buffer on the way was full…
    assert slow.waited <= 0.4 * slow.elapsed, (slow.waited, slow.elapsed)
    assert_bounded(rss, idle)
    # …and the client was held back to it: when it had sent its last byte, no more than the
    # bound (kernel socket buffers included) was still waiting for the origin.
    assert queued <= BOUND, f"{queued / MIB:.1f} MiB queued for the origin"


def digest_of_blocks(size: int) -> str:
    block = bytes(range(256)) * (PIECE // 256)
    digest = hashlib.sha256()
    for _ in range(size // PIECE):
        digest.update(block)
    return digest.hexdigest()
