"""What the knobs of the whole path do: Kokoa (ingress + agent) under wrk, one variant at a time.

    uv run python bench/knobs.py [--duration 5] [--repeat 3]

Each variant starts its own ingress and agent(s) in front of one nginx origin and measures
small responses at 50 connections and the 1 MiB body at 4 (medians of `--repeat` runs):
requests/s, p50, MiB/s and CPU µs per request of every server-side process. Transport knobs
(datagram size, windows, watermarks, socket buffers, GSO) are measured on the raw exchange by
`bench/quic_raw.py --knobs`.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from contextlib import ExitStack
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.run import (  # noqa: E402
    ONE_MIB,
    ORIGIN_SERVER,
    KokoaVariant,
    Result,
    kokoa_topology,
    measure,
    nginx,
    wait_port,
)
from common.localrun import LOOPBACK, free_port  # noqa: E402

VARIANTS = (
    ("defaults (uvloop, 1 agent, 1 connection)", KokoaVariant()),
    ("asyncio's loop instead of uvloop", KokoaVariant(uvloop=False)),
    ("access log lines on (level info)", KokoaVariant(log_level="info")),
    ("2 agent processes (replicas)", KokoaVariant(agents=2)),
)
WORKLOADS = (("small c50", "/small", 50), ("1MiB c4", "/1m", 4))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--duration", type=int, default=5)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--only", default="", help="variants whose name contains this")
    args = parser.parse_args()
    rows: list[tuple[str, list[Result]]] = []
    with tempfile.TemporaryDirectory(prefix="kokoa-knobs-") as tmp, ExitStack() as stack:
        work = Path(tmp)
        work.chmod(0o755)  # nginx's workers must read the files
        www = work / "origin" / "www"
        www.mkdir(parents=True)
        (www / "1m").write_bytes(os.urandom(ONE_MIB))
        port = free_port()
        conf = ORIGIN_SERVER.format(LOOPBACK=LOOPBACK, port=port, dir=work / "origin")
        origin = stack.enter_context(nginx(work / "origin", conf))
        wait_port(port)
        for i, (name, variant) in enumerate(VARIANTS):
            if args.only not in name:
                continue
            print(name, flush=True)
            with ExitStack() as kokoa:
                base, procs = kokoa_topology(work / f"kokoa-{i}", port, kokoa, variant)
                timing = (args.duration, args.repeat, WORKLOADS)
                rows.append((name, measure("kokoa", base, "bench.test", [origin, *procs], *timing)))
    print()
    print(f"{'variant':42} {'small c50 req/s':>15} {'p50 ms':>7} {'µs CPU/req':>10} "
          f"{'1MiB c4 MiB/s':>13} {'ms CPU/MiB':>10}")  # fmt: skip
    for name, (small, bulk) in rows:
        print(
            f"{name:42} {small.rps:15.0f} {small.p50_ms:7.2f} {small.cpu_ms_per_req * 1e3:10.0f} "
            f"{bulk.mib_s:13.1f} {bulk.cpu_ms_per_req:10.0f}"
        )


if __name__ == "__main__":
    main()
