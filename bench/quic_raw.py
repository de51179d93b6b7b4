"""Raw QUIC transport benchmark: aioquic's stock asyncio helpers vs Kokoa's shell, one run.

    uv run python bench/quic_raw.py [--bulk-mib 256] [--exchanges 20000] [--concurrency 50]
                                    [--loops asyncio,uvloop] [--knobs] [--json] [--duration S]

Each row runs a server in its own process (pinned to CPU 1) and the client here (CPU 0), on
127.0.0.1, with one connection:

- bulk: one stream carries `--bulk-mib` MiB client → server; the server answers with the count.
- exchanges: `--concurrency` workers each open a stream, send a 64-byte request and FIN, and
  read a 256-byte response to FIN, until `--exchanges` are done (or `--duration` seconds).

Stock = `aioquic.asyncio.connect()/serve()` with asyncio StreamReader/Writer (its send buffer is
unbounded, so its bulk writes never wait). Kokoa = `common.quic` with mutual TLS and bounded
buffers. `--knobs` also measures Kokoa with each option varied from the defaults. `--json`
prints one JSON line last (read by bench/run.py).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import ssl
import sys
import tempfile
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, replace
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from aioquic.asyncio.client import connect as stock_connect  # noqa: E402
from aioquic.asyncio.protocol import QuicConnectionProtocol  # noqa: E402
from aioquic.asyncio.server import serve as stock_serve  # noqa: E402
from aioquic.quic.configuration import QuicConfiguration  # noqa: E402

from common import pki  # noqa: E402
from common.quic import QuicOptions, QuicTunnelConnection, QuicTunnelStream, connect, serve  # noqa: E402

HOST = "127.0.0.1"
BLOCK = 64 << 10
REQUEST = b"q" * 64
RESPONSE = b"r" * 256


@dataclass(frozen=True)
class Setup:
    impl: str  # "stock" or "kokoa"
    loop: str  # "asyncio" or "uvloop"
    options: QuicOptions = QuicOptions()  # noqa: RUF009 - frozen
    label: str = ""

    @property
    def name(self) -> str:
        return self.label or f"{self.impl}/{self.loop}"


@dataclass(frozen=True)
class Phase:
    rate: float  # MiB/s or exchanges/s
    cpu: float  # client + server CPU seconds per MiB or per exchange


@dataclass(frozen=True)
class Result:
    setup: Setup
    bulk: Phase
    exchanges: Phase

    @property
    def bulk_mib_s(self) -> float:
        return self.bulk.rate

    @property
    def exchanges_s(self) -> float:
        return self.exchanges.rate


class CpuProbe:
    """CPU seconds used so far by this process plus the server process."""

    def __init__(self, pipe: Connection) -> None:
        self._pipe = pipe

    def __call__(self) -> float:
        self._pipe.send("cpu")
        server: float = self._pipe.recv()
        return time.process_time() + server


# --- certificates ----------------------------------------------------------------------------


def write_pki(directory: Path) -> tuple[pki.TlsFiles, pki.TlsFiles]:
    ca_key, ca_cert = pki.create_ca("bench CA", days=2)
    pki.write_certificate(directory / "ca.pem", ca_cert)
    files = []
    roles: tuple[tuple[pki.Role, list[str]], ...] = (("ingress", [HOST]), ("agent", []))
    for role, addresses in roles:
        key, cert = pki.issue_certificate(
            ca_key, ca_cert, role=role, name="bench", ip_addresses=addresses, days=1
        )
        assert key is not None
        pki.write_key(directory / f"{role}.key", key)
        pki.write_certificate(directory / f"{role}.pem", cert)
        files.append(
            pki.TlsFiles(directory / f"{role}.pem", directory / f"{role}.key", directory / "ca.pem")
        )
    return files[0], files[1]


# --- servers (in a child process) ------------------------------------------------------------


def server_process(setup: Setup, tls: pki.TlsFiles, pipe: Connection) -> None:
    _pin(1)
    run(setup.loop, _server(setup, tls, pipe))


async def _server(setup: Setup, tls: pki.TlsFiles, pipe: Connection) -> None:
    if setup.impl == "stock":
        configuration = QuicConfiguration(alpn_protocols=["kokoa/1"], is_client=False)
        configuration.load_cert_chain(tls.cert, tls.key)
        tasks: set[asyncio.Task[None]] = set()

        def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            task = asyncio.get_running_loop().create_task(_stock_answer(reader, writer))
            tasks.add(task)
            task.add_done_callback(tasks.discard)

        server = await stock_serve(HOST, 0, configuration=configuration, stream_handler=handler)
        port = server._transport.get_extra_info("sockname")[1]  # type: ignore[union-attr]
    else:
        kokoa = await serve(HOST, 0, tls, _kokoa_connection, options=setup.options)
        port = kokoa.port
    pipe.send(port)
    while await asyncio.to_thread(pipe.recv) == "cpu":  # until the client says "done"
        pipe.send(time.process_time())


async def _stock_answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    count = 0
    while chunk := await reader.read(BLOCK):
        count += len(chunk)
    writer.write(RESPONSE if count <= len(REQUEST) else b"%d" % count)
    writer.write_eof()


async def _kokoa_connection(conn: QuicTunnelConnection) -> None:
    async with asyncio.TaskGroup() as group:
        while True:
            group.create_task(_kokoa_answer(await conn.accept_stream()))


async def _kokoa_answer(stream: QuicTunnelStream) -> None:
    count = 0
    while chunk := await stream.read(BLOCK):
        count += len(chunk)
    await stream.write(RESPONSE if count <= len(REQUEST) else b"%d" % count)
    await stream.write_eof()


# --- clients ---------------------------------------------------------------------------------


async def stock_client(
    probe: CpuProbe, port: int, bulk: int, exchanges: int, conc: int, budget: float
) -> Result:
    configuration = QuicConfiguration(alpn_protocols=["kokoa/1"], is_client=True)
    configuration.verify_mode = ssl.CERT_NONE
    async with stock_connect(HOST, port, configuration=configuration) as client:
        assert isinstance(client, QuicConnectionProtocol)

        async def exchange(payload: bytes, blocks: int) -> bytes:
            reader, writer = await client.create_stream()
            for _ in range(blocks):
                writer.write(payload)
            writer.write_eof()
            return await reader.read()

        mib_s = await _bulk(probe, lambda: exchange(b"b" * BLOCK, bulk // BLOCK), bulk)
        rate = await _exchanges(probe, lambda: exchange(REQUEST, 1), exchanges, conc, budget)
    return Result(Setup("stock", ""), mib_s, rate)


async def kokoa_client(
    probe: CpuProbe, port: int, tls: pki.TlsFiles, options: QuicOptions,
    bulk: int, exchanges: int, conc: int, budget: float,
) -> Result:  # fmt: skip
    conn = await connect(HOST, port, tls, server_name=HOST, options=options)

    async def exchange(payload: bytes, blocks: int) -> bytes:
        stream = await conn.open_stream()
        for _ in range(blocks):
            await stream.write(payload)
        await stream.write_eof()
        parts = []
        while chunk := await stream.read():
            parts.append(chunk)
        return b"".join(parts)

    try:
        mib_s = await _bulk(probe, lambda: exchange(b"b" * BLOCK, bulk // BLOCK), bulk)
        rate = await _exchanges(probe, lambda: exchange(REQUEST, 1), exchanges, conc, budget)
    finally:
        conn.close()
        await conn.wait_closed()
    return Result(Setup("kokoa", ""), mib_s, rate)


async def _bulk(
    probe: CpuProbe, send: Callable[[], Coroutine[Any, Any, bytes]], size: int
) -> Phase:
    cpu, started = probe(), time.perf_counter()
    answer = await send()
    elapsed, cpu = time.perf_counter() - started, probe() - cpu
    if int(answer) != size:
        raise RuntimeError(f"server received {answer!r} bytes, not {size}")
    mib = size / (1 << 20)
    return Phase(mib / elapsed, cpu / mib)


async def _exchanges(
    probe: CpuProbe,
    one: Callable[[], Coroutine[Any, Any, bytes]],
    count: int,
    concurrency: int,
    budget: float,
) -> Phase:
    done = 0
    deadline = time.perf_counter() + budget

    async def worker() -> None:
        nonlocal done
        while done < count and time.perf_counter() < deadline:
            done += 1
            if await one() != RESPONSE:
                raise RuntimeError("bad response")

    cpu, started = probe(), time.perf_counter()
    async with asyncio.TaskGroup() as group:
        for _ in range(concurrency):
            group.create_task(worker())
    elapsed, cpu = time.perf_counter() - started, probe() - cpu
    return Phase(done / elapsed, cpu / done)


# --- orchestration ---------------------------------------------------------------------------


def measure(setup: Setup, server_tls: pki.TlsFiles, agent_tls: pki.TlsFiles, args: Any) -> Result:
    context = multiprocessing.get_context("spawn")
    parent, child = context.Pipe()
    server = context.Process(target=server_process, args=(setup, server_tls, child), daemon=True)
    server.start()
    try:
        port = parent.recv()
        bulk, count, conc, budget = (
            args.bulk_mib << 20,
            args.exchanges,
            args.concurrency,
            args.duration,
        )
        probe = CpuProbe(parent)
        if setup.impl == "stock":
            coro = stock_client(probe, port, bulk, count, conc, budget)
        else:
            coro = kokoa_client(probe, port, agent_tls, setup.options, bulk, count, conc, budget)
        result: Result = run(setup.loop, coro)
        parent.send("done")
    finally:
        server.join(timeout=5)
        if server.is_alive():
            server.terminate()
            server.join()
    return replace(result, setup=setup)


def run(loop: str, coro: Coroutine[Any, Any, Any]) -> Any:
    if loop == "uvloop":
        import uvloop

        return uvloop.run(coro)
    return asyncio.run(coro)


def _pin(cpu: int) -> None:
    if hasattr(os, "sched_setaffinity") and len(os.sched_getaffinity(0)) > 1:
        os.sched_setaffinity(0, {cpu})


def knob_setups(loop: str) -> list[Setup]:
    base = QuicOptions()
    variants: list[tuple[str, QuicOptions]] = [
        ("datagram 1200", replace(base, max_datagram_size=1200)),
        ("datagram 1350", replace(base, max_datagram_size=1350)),
        ("stream window 256K", replace(base, stream_window=256 << 10)),
        ("stream window 4M", replace(base, stream_window=4 << 20, connection_window=64 << 20)),
        ("watermarks 256K/64K", replace(base, high_watermark=256 << 10, low_watermark=64 << 10)),
        ("watermarks 4M/1M", replace(base, high_watermark=4 << 20, low_watermark=1 << 20)),
        ("socket buffer 256K", replace(base, socket_buffer=256 << 10)),
        ("no GSO (a sendto per datagram)", replace(base, gso=False)),
        ("datagram 8192 (loopback only)", replace(base, max_datagram_size=8192)),
        ("datagram 16384 (loopback only)", replace(base, max_datagram_size=16384)),
    ]
    return [Setup("kokoa", loop, options, f"kokoa/{loop} {name}") for name, options in variants]


def table(results: list[Result]) -> str:
    stock = {r.setup.loop: r for r in results if r.setup.impl == "stock"}
    lines = [
        f"{'setup':46} {'MiB/s':>7} {'ms CPU/MiB':>10} {'exch/s':>7} {'us CPU/exch':>11} "
        f"{'MiB/s x':>8} {'exch/s x':>8}",
    ]
    for r in results:
        base = stock.get(r.setup.loop) or stock.get("asyncio")
        ratios = ("", "")
        if base is not None and r.setup.impl == "kokoa":
            bulk, exchanges = r.bulk.rate / base.bulk.rate, r.exchanges.rate / base.exchanges.rate
            ratios = (f"{bulk:.2f}", f"{exchanges:.2f}")
        lines.append(
            f"{r.setup.name:46} {r.bulk.rate:7.1f} {r.bulk.cpu * 1e3:10.1f} "
            f"{r.exchanges.rate:7.0f} {r.exchanges.cpu * 1e6:11.0f} {ratios[0]:>8} {ratios[1]:>8}"
        )
    lines.append("x = ratio to stock aioquic on the same event loop; CPU = client + server")
    return "\n".join(lines)


def best(runs: list[Result]) -> Result:
    """The best bulk and the best exchange phase of several runs (noise only slows down)."""
    bulk = max((r.bulk for r in runs), key=lambda p: p.rate)
    exchanges = max((r.exchanges for r in runs), key=lambda p: p.rate)
    return Result(runs[0].setup, bulk, exchanges)


def median(runs: list[Result]) -> Result:
    """The median bulk and the median exchange phase of several runs (bench/run.py's targets
    are stated on medians)."""
    bulk = sorted((r.bulk for r in runs), key=lambda p: p.rate)[len(runs) // 2]
    exchanges = sorted((r.exchanges for r in runs), key=lambda p: p.rate)[len(runs) // 2]
    return Result(runs[0].setup, bulk, exchanges)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--bulk-mib", type=int, default=256)
    parser.add_argument("--exchanges", type=int, default=20_000)
    parser.add_argument("--concurrency", type=int, default=50)
    parser.add_argument("--duration", type=float, default=30.0, help="max seconds per exchange run")
    parser.add_argument("--loops", default="asyncio,uvloop")
    parser.add_argument("--repeat", type=int, default=1, help="runs per row; the best counts")
    parser.add_argument("--median", action="store_true", help="with --repeat: the median counts")
    parser.add_argument("--knobs", action="store_true", help="also vary Kokoa's options")
    parser.add_argument("--json", action="store_true", help="print a JSON summary line last")
    args = parser.parse_args()
    _pin(0)
    loops = args.loops.split(",")
    setups = [Setup(impl, loop) for loop in loops for impl in ("stock", "kokoa")]
    if args.knobs:
        setups += knob_setups(loops[-1])
    results = []
    with tempfile.TemporaryDirectory() as directory:
        server_tls, agent_tls = write_pki(Path(directory))
        for setup in setups:
            runs = [measure(setup, server_tls, agent_tls, args) for _ in range(args.repeat)]
            results.append(median(runs) if args.median else best(runs))
            print(f"{setup.name}: {results[-1].bulk_mib_s:.1f} MiB/s, "
                  f"{results[-1].exchanges_s:.0f} exchanges/s", file=sys.stderr)  # fmt: skip
    print(table(results))
    if args.json:
        print(json.dumps(summary(results, loops[-1])))


def summary(results: list[Result], loop: str) -> dict[str, float]:
    by = {(r.setup.impl, r.setup.loop): r for r in results if not r.setup.label}
    ours, stock = by[("kokoa", loop)], by[("stock", loop)]
    return {
        "bulk_mib_s": ours.bulk_mib_s,
        "exchanges_per_s": ours.exchanges_s,
        "stock_bulk_mib_s": stock.bulk_mib_s,
        "stock_exchanges_per_s": stock.exchanges_s,
        "bulk_ratio": ours.bulk_mib_s / stock.bulk_mib_s,
        "exchanges_ratio": ours.exchanges_s / stock.exchanges_s,
        "bulk_cpu_ms_per_mib": ours.bulk.cpu * 1e3,
        "stock_bulk_cpu_ms_per_mib": stock.bulk.cpu * 1e3,
        "exchange_cpu_us": ours.exchanges.cpu * 1e6,
        "stock_exchange_cpu_us": stock.exchanges.cpu * 1e6,
    }


if __name__ == "__main__":
    main()
