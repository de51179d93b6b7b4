"""Where the CPU of a Kokoa request goes: py-spy on the ingress and the agent under wrk load.

    uv run python bench/profile.py [--duration 10] [--conns 50] [--path /small] [--top 25]
                                   [--log-level warning] [--out DIR]

Starts the bench topology (nginx origin, one ingress, one agent: bench/run.py), warms up,
then runs wrk for `--duration` seconds while `py-spy record` samples both processes. Prints,
per process, the CPU per request measured around the run and the functions with the most
samples: *self* (the function itself was running) and *total* (it was on the stack), each
also as µs of CPU per request. The raw collapsed stacks stay in `--out` for flame graphs.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
from collections import Counter
from contextlib import ExitStack
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.run import (  # noqa: E402
    ONE_MIB,
    ORIGIN_SERVER,
    KokoaVariant,
    cpu_seconds,
    kokoa_topology,
    nginx,
    run_wrk,
    wait_port,
)
from common.localrun import LOOPBACK, free_port  # noqa: E402

RATE = 250  # py-spy samples per second per process


def py_spy() -> str:
    found = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    if not Path(found).exists():
        raise SystemExit("py-spy is missing: uv sync (it is a dev dependency)")
    return found


def record(pid: int, seconds: int, out: Path) -> subprocess.Popen[bytes]:
    argv = [py_spy(), "record", "--pid", str(pid), "--duration", str(seconds)]
    argv += ["--rate", str(RATE), "--format", "raw", "--nolineno", "--output", str(out)]
    return subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def summarise(raw: Path, requests: int, cpu: float, top: int) -> str:
    """Self and total samples per function, from py-spy's collapsed stacks."""
    own: Counter[str] = Counter()
    total: Counter[str] = Counter()
    samples = 0
    for line in raw.read_text().splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack:
            continue
        count = int(count_text)
        frames = stack.split(";")
        samples += count
        own[frames[-1]] += count
        for frame in set(frames):
            total[frame] += count
    # Spread the process's measured CPU over the samples: µs of CPU per request per frame.
    us = 1e6 * cpu / max(requests, 1) / max(samples, 1)
    lines = [f"  {samples} samples, {1e6 * cpu / max(requests, 1):.0f} µs CPU per request"]
    for title, counter in (("self", own), ("total", total)):
        lines.append(f"  -- top {top} by {title} (share, µs/request) --")
        for frame, count in counter.most_common(top):
            lines.append(f"  {100 * count / samples:5.1f}% {count * us:7.1f}  {frame[:110]}")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--duration", type=int, default=10)
    parser.add_argument("--conns", type=int, default=50)
    parser.add_argument("--path", default="/small")
    parser.add_argument("--top", type=int, default=25)
    parser.add_argument("--log-level", default="warning")
    parser.add_argument("--out", type=Path, default=None, help="keep raw stacks here")
    args = parser.parse_args()
    out = args.out or Path(tempfile.mkdtemp(prefix="kokoa-profile-"))
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="kokoa-bench-") as tmp, ExitStack() as stack:
        work = Path(tmp)
        work.chmod(0o755)
        www = work / "origin" / "www"
        www.mkdir(parents=True)
        (www / "1m").write_bytes(os.urandom(ONE_MIB))
        origin_port = free_port()
        origin_conf = ORIGIN_SERVER.format(LOOPBACK=LOOPBACK, port=origin_port, dir=work / "origin")
        stack.enter_context(nginx(work / "origin", origin_conf))
        wait_port(origin_port)
        variant = KokoaVariant(log_level=args.log_level)
        base, procs = kokoa_topology(work / "kokoa", origin_port, stack, variant)
        url = base + args.path
        run_wrk(url, "bench.test", args.conns, 2.0, procs)  # warm up
        names = ("ingress", "agent")
        cpu0 = [cpu_seconds([p]) for p in procs]
        spies = [
            record(p.pid, args.duration, out / f"{n}.txt")
            for n, p in zip(names, procs, strict=True)
        ]
        rps, p50, _, _, _ = run_wrk(url, "bench.test", args.conns, args.duration, procs)
        cpu = [cpu_seconds([p]) - c for p, c in zip(procs, cpu0, strict=True)]
        for spy in spies:
            spy.wait(args.duration + 30)
        requests = int(rps * args.duration)
        print(f"{url} c{args.conns}: {rps:.0f} req/s, p50 {p50:.2f} ms (py-spy attached)")
        for name, proc_cpu in zip(names, cpu, strict=True):
            print(f"\n{name}:")
            print(summarise(out / f"{name}.txt", requests, proc_cpu, args.top))
        print(f"\nraw stacks: {out}")


if __name__ == "__main__":
    main()
