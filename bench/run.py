"""Kokoa benchmark: one run, side by side on loopback, with ratios to the baselines.

    uv run python bench/run.py [--duration 5] [--repeat 3] [--log-level warning] [--skip-raw]
                               [--rows direct,nginx-2hop,kokoa] [--workloads "small c50,1MiB c4"]

Rows (same machine, same run):
  direct        wrk → nginx origin
  nginx-2hop    wrk → nginx → nginx → nginx origin (keep-alive upstreams): the best case for
                any two-hop tunnel
  kokoa         wrk → ingress → (QUIC) → agent → nginx origin
and the transport ceiling, from bench/quic_raw.py: raw aioquic stream exchanges/s and bulk MiB/s
on one connection (our QUIC shell, uvloop).

Workloads: small responses at 50 and 200 connections; a 1 MiB body at 1 and 4 connections
(one agent connection carries them all: the bulk rate). Each is run `--repeat` times and the
medians are reported: requests/s, p50/p99 latency, MiB/s, CPU ms per request (all server-side
processes: nginx, ingress, agent), each ratio to the baselines, then the issue's targets with
what was measured and whether each is met. nginx logs nothing (`access_log off`), so Kokoa runs
at log level `warning` by default (no access lines); `--log-level info` measures them.
Needs Debian's nginx and wrk (`./dev test` installs them).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

import psutil
import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from common.localrun import (  # noqa: E402
    LOOPBACK,
    Layout,
    agent_config,
    free_port,
    ingress_config,
    kokoa_command,
    write_pki,
)

ONE_MIB = 1 << 20


@dataclass(frozen=True)
class Result:
    row: str
    workload: str
    rps: float
    p50_ms: float
    p99_ms: float
    mib_s: float
    cpu_ms_per_req: float


# ---- processes ------------------------------------------------------------------------------


@contextmanager
def process(argv: Sequence[str], log: Path, cwd: Path | None = None) -> Iterator[psutil.Process]:
    with log.open("ab") as out:
        proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, cwd=cwd)
    try:
        yield psutil.Process(proc.pid)
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def wait_port(port: int, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as sock:
            if sock.connect_ex((LOOPBACK, port)) == 0:
                return
        time.sleep(0.05)
    raise TimeoutError(f"nothing listens on {port}")


def wait_http(url: str, host: str, timeout: float = 30.0) -> None:
    import urllib.request

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            req = urllib.request.Request(url, headers={"Host": host})
            with urllib.request.urlopen(req, timeout=2) as resp:
                if resp.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.1)
    raise TimeoutError(f"{url} (Host: {host}) never answered 200")


# ---- nginx ----------------------------------------------------------------------------------

NGINX_MAIN = """\
daemon off;
master_process on;
worker_processes 1;
pid {dir}/nginx.pid;
error_log {dir}/error.log warn;
events {{ worker_connections 4096; }}
http {{
    access_log off;
    keepalive_requests 100000;
    client_body_temp_path {dir}/body;
    proxy_temp_path {dir}/proxy;
    fastcgi_temp_path {dir}/fastcgi;
    uwsgi_temp_path {dir}/uwsgi;
    scgi_temp_path {dir}/scgi;
{servers}
}}
"""

ORIGIN_SERVER = """\
    server {{
        listen {LOOPBACK}:{port};
        location = /small {{ default_type text/plain; return 200 "hello from the origin\\n"; }}
        location / {{ root {dir}/www; }}
    }}
"""

PROXY_SERVER = """\
    upstream up_{port} {{ server {LOOPBACK}:{upstream}; keepalive 256; }}
    server {{
        listen {LOOPBACK}:{port};
        location / {{
            proxy_pass http://up_{port};
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_buffering on;
        }}
    }}
"""


def nginx_conf(work: Path, servers: str) -> Path:
    work.mkdir(parents=True, exist_ok=True)
    conf = work / "nginx.conf"
    conf.write_text(NGINX_MAIN.format(dir=work, servers=servers))
    return conf


@contextmanager
def nginx(work: Path, servers: str) -> Iterator[psutil.Process]:
    nginx_bin = shutil.which("nginx") or "/usr/sbin/nginx"
    conf = nginx_conf(work, servers)
    with process([nginx_bin, "-p", str(work), "-c", str(conf)], work / "nginx.out") as proc:
        yield proc


# ---- wrk ------------------------------------------------------------------------------------

UNITS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60000.0}
SIZE = {"B": 1, "KB": 1024, "MB": 1024**2, "GB": 1024**3}


def parse_wrk(out: str) -> tuple[float, float, float, float, int]:
    def latency(pct: str) -> float:
        m = re.search(rf"^\s+{pct}%\s+([\d.]+)(us|ms|s|m)\s*$", out, re.M)
        return float(m.group(1)) * UNITS[m.group(2)] if m else float("nan")

    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    tm = re.search(r"Transfer/sec:\s+([\d.]+)(B|KB|MB|GB)", out)
    mib = float(tm.group(1)) * SIZE[tm.group(2)] / ONE_MIB if tm else 0.0
    total = int(re.search(r"(\d+) requests in", out).group(1))  # type: ignore[union-attr]
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    if errors:
        raise RuntimeError(f"wrk saw {errors.group(1)} non-2xx responses:\n{out}")
    return rps, latency("50"), latency("99"), mib, total


def cpu_seconds(procs: Sequence[psutil.Process]) -> float:
    total = 0.0
    for proc in procs:
        for p in [proc, *proc.children(recursive=True)]:
            try:
                t = p.cpu_times()
                total += t.user + t.system
            except psutil.NoSuchProcess:
                pass
    return total


def run_wrk(
    url: str, host: str, conns: int, duration: float, procs: Sequence[psutil.Process]
) -> tuple[float, float, float, float, float]:
    wrk = shutil.which("wrk")
    if wrk is None:
        raise SystemExit("wrk is missing: apt-get install wrk (./dev test installs it)")
    seconds = max(1, round(duration))  # wrk takes whole seconds
    argv = [wrk, "-t1", f"-c{conns}", f"-d{seconds}s", "--latency", "-H", f"Host: {host}", url]
    cpu0 = cpu_seconds(procs)
    out = subprocess.run(argv, capture_output=True, text=True, check=True).stdout
    cpu = cpu_seconds(procs) - cpu0
    rps, p50, p99, mib, total = parse_wrk(out)
    return rps, p50, p99, mib, 1000.0 * cpu / max(total, 1)


# ---- the rows -------------------------------------------------------------------------------

WORKLOADS = (
    ("small c50", "/small", 50),
    ("small c200", "/small", 200),
    ("1MiB c1", "/1m", 1),
    ("1MiB c4", "/1m", 4),
)
ROWS = ("direct", "nginx-2hop", "kokoa")
IDLE_ORIGIN_CONNECTIONS = 256  # the agent's, as the nginx chain's upstream keepalive
BULK = "1MiB c4"  # the workload compared with raw aioquic bulk on one connection


def measure(
    row: str,
    base: str,
    host: str,
    procs: Sequence[psutil.Process],
    duration: float,
    repeat: int,
    workloads: Sequence[tuple[str, str, int]] = WORKLOADS,
) -> list[Result]:
    results = []
    for name, path, conns in workloads:
        run_wrk(base + path, host, conns, 1.0, procs)  # warm up
        runs = [run_wrk(base + path, host, conns, duration, procs) for _ in range(repeat)]
        rps, p50, p99, mib, cpu = (statistics.median(values) for values in zip(*runs, strict=True))
        results.append(Result(row, name, rps, p50, p99, mib, cpu))
        print(
            f"  {row:11} {name:11} {rps:10.0f} req/s  p50 {p50:7.2f} ms  p99 {p99:7.2f} ms"
            f"  {mib:6.1f} MiB/s  (median of {repeat}; load average {os.getloadavg()[0]:.1f})",
            flush=True,
        )
    return results


@dataclass(frozen=True)
class KokoaVariant:
    """How the Kokoa row runs (bench/knobs.py varies it)."""

    log_level: str = "warning"
    uvloop: bool = True
    agents: int = 1  # agent processes (replicas with one identity)


def kokoa_topology(
    work: Path, origin_port: int, stack: ExitStack, variant: KokoaVariant = KokoaVariant()
) -> tuple[str, list[psutil.Process]]:
    layout = Layout.choose(work, nodes=1, fixed=False)
    layout = Layout(root=work, origin_port=origin_port, nodes=layout.nodes, host="bench.test")
    write_pki(layout)
    node = layout.nodes[0]
    ingress = ingress_config(layout, node)
    ingress["log"] = {"level": variant.log_level, "format": "json"}
    (work / "ingress.yaml").write_text(yaml.safe_dump(ingress))
    agent = agent_config(layout)
    agent["log"] = {"level": variant.log_level, "format": "json"}
    # As the nginx chain's `keepalive 256`: up to 200 connections' requests in flight reuse
    # origin connections (the default 32 closed and reopened ~5% of them at 50).
    for service in agent["services"]:  # type: ignore[attr-defined]
        service["max_idle_connections"] = IDLE_ORIGIN_CONNECTIONS
    (work / "agent.yaml").write_text(yaml.safe_dump(agent))
    loop = [] if variant.uvloop else ["--no-uvloop"]
    ingress_argv = kokoa_command("ingress", "run", "--config", "ingress.yaml", *loop)
    procs = [stack.enter_context(process(ingress_argv, work / "ingress.log", work))]
    for i in range(variant.agents):
        agent_argv = kokoa_command("edge", "run", "--config", "agent.yaml", *loop)
        procs.append(stack.enter_context(process(agent_argv, work / f"agent-{i}.log", work)))
    wait_http(f"http://{LOOPBACK}:{node.http}/small", layout.host)
    return f"http://{LOOPBACK}:{node.http}", procs


def raw_quic(duration: float, repeat: int) -> dict[str, float]:
    """The transport ceiling, measured by bench/quic_raw.py in its own processes (medians)."""
    script = ROOT / "bench" / "quic_raw.py"
    argv = [sys.executable, str(script), "--json", "--loops", "uvloop", "--bulk-mib", "64"]
    argv += ["--duration", str(duration), "--repeat", str(repeat), "--median"]
    out = subprocess.run(argv, capture_output=True, text=True, check=True).stdout
    data: dict[str, float] = json.loads(out.strip().splitlines()[-1])
    return data


def table(results: list[Result], raw: dict[str, float]) -> str:
    by = {(r.row, r.workload): r for r in results}
    lines = [
        f"{'row':11} {'workload':11} {'req/s':>9} {'p50 ms':>8} {'p99 ms':>8} {'MiB/s':>8} "
        f"{'cpu ms/req':>10} {'vs direct':>9} {'vs 2hop':>8} {'vs rawQUIC':>10}",
    ]
    missing = Result("", "", float("nan"), 0.0, 0.0, 0.0, 0.0)
    for r in results:
        direct = by.get(("direct", r.workload), missing)
        hop = by.get(("nginx-2hop", r.workload), missing)
        vs_raw = float("nan")
        if r.row == "kokoa" and "small" in r.workload:
            vs_raw = r.rps / raw.get("exchanges_per_s", float("nan"))
        elif r.row == "kokoa":
            vs_raw = r.mib_s / raw.get("bulk_mib_s", float("nan"))
        lines.append(
            f"{r.row:11} {r.workload:11} {r.rps:9.0f} {r.p50_ms:8.2f} {r.p99_ms:8.2f} "
            f"{r.mib_s:8.1f} {r.cpu_ms_per_req:10.3f} {r.rps / direct.rps:9.2f} "
            f"{r.rps / hop.rps:8.2f} {vs_raw:10.2f}"
        )
    lines.append("(vs rawQUIC: small = req/s over raw exchanges/s; 1MiB = MiB/s over raw bulk)")
    lines.append("")
    lines.append(
        f"raw aioquic (our shell, uvloop): {raw.get('exchanges_per_s', float('nan')):.0f} "
        f"exchanges/s at {raw.get('exchange_cpu_us', float('nan')):.0f} µs CPU each; "
        f"{raw.get('bulk_mib_s', float('nan')):.1f} MiB/s bulk on one connection at "
        f"{raw.get('bulk_cpu_ms_per_mib', float('nan')):.0f} ms CPU per MiB"
    )
    lines += ["", *targets(by, raw)]
    lines.append(
        "(other work on the machine can move rates by a factor of two between rows: the load"
        " average is printed with each row above; CPU per request moves least)"
    )
    return "\n".join(lines)


def targets(by: dict[tuple[str, str], Result], raw: dict[str, float]) -> list[str]:
    """The issue's targets: what each asks, what this run measured, met or not."""
    nan = float("nan")
    missing = Result("", "", nan, nan, nan, nan, nan)
    small, bulk = by.get(("kokoa", "small c50"), missing), by.get(("kokoa", BULK), missing)
    added = small.p50_ms - by.get(("direct", "small c50"), missing).p50_ms
    raw_rate, raw_bulk = raw.get("exchanges_per_s", nan), raw.get("bulk_mib_s", nan)
    hop = by.get(("nginx-2hop", "small c50"), missing).rps
    rows = [
        ("small c50 req/s ≥ 50% of raw exchanges/s", small.rps / raw_rate, 0.5, True, "{:.0%}"),
        ("small c50 req/s ≥ 25% of nginx 2-hop", small.rps / hop, 0.25, True, "{:.0%}"),
        ("added p50 at 50 connections ≤ 2 ms", added, 2.0, False, "{:.2f} ms"),
        (f"bulk ({BULK}) ≥ 70% of raw bulk", bulk.mib_s / raw_bulk, 0.7, True, "{:.0%}"),
    ]
    lines = [f"{'target':44} {'measured':>10}  met"]
    for name, value, bound, at_least, fmt in rows:
        met = value >= bound if at_least else value <= bound
        lines.append(f"{name:44} {fmt.format(value):>10}  {'yes' if met else 'NO'}")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--duration", type=int, default=5, help="seconds per wrk run")
    parser.add_argument("--repeat", type=int, default=3, help="runs per workload (medians)")
    parser.add_argument("--log-level", default="warning", help="of the ingress and the agent")
    parser.add_argument("--skip-raw", action="store_true", help="skip the raw aioquic ceiling")
    parser.add_argument(
        "--rows", default=",".join(ROWS), help=f"comma-separated subset of {','.join(ROWS)}"
    )
    parser.add_argument(
        "--workloads",
        default=",".join(name for name, _, _ in WORKLOADS),
        help="comma-separated subset of: " + ", ".join(name for name, _, _ in WORKLOADS),
    )
    args = parser.parse_args()
    rows = [row.strip() for row in args.rows.split(",") if row.strip()]
    names = [name.strip() for name in args.workloads.split(",") if name.strip()]
    workloads = tuple(w for w in WORKLOADS if w[0] in names)
    unknown = sorted(set(rows) - set(ROWS)) + sorted(set(names) - {w[0] for w in WORKLOADS})
    if unknown or not rows or not workloads:
        parser.error(f"unknown or empty --rows/--workloads: {', '.join(unknown) or '(none)'}")

    with tempfile.TemporaryDirectory(prefix="kokoa-bench-") as tmp, ExitStack() as stack:
        work = Path(tmp)
        work.chmod(0o755)  # nginx's workers drop root for nobody; they must read the files
        www = work / "origin" / "www"
        www.mkdir(parents=True)
        (www / "1m").write_bytes(os.urandom(ONE_MIB))
        origin_port, a_port, b_port = free_port(), free_port(), free_port()
        origin = stack.enter_context(
            nginx(
                work / "origin",
                ORIGIN_SERVER.format(LOOPBACK=LOOPBACK, port=origin_port, dir=work / "origin"),
            )
        )
        hops = stack.enter_context(
            nginx(
                work / "hops",
                PROXY_SERVER.format(LOOPBACK=LOOPBACK, port=a_port, upstream=b_port)
                + PROXY_SERVER.format(LOOPBACK=LOOPBACK, port=b_port, upstream=origin_port),
            )
        )
        for port in (origin_port, a_port, b_port):
            wait_port(port)
        results: list[Result] = []
        timing = (args.duration, args.repeat, workloads)
        print("measuring …", flush=True)
        if "direct" in rows:
            direct = f"http://{LOOPBACK}:{origin_port}"
            results += measure("direct", direct, "bench.test", [origin], *timing)
        if "nginx-2hop" in rows:
            two_hop = f"http://{LOOPBACK}:{a_port}"
            results += measure("nginx-2hop", two_hop, "bench.test", [origin, hops], *timing)
        if "kokoa" in rows:
            variant = KokoaVariant(log_level=args.log_level)
            kokoa_base, kokoa_procs = kokoa_topology(work / "kokoa", origin_port, stack, variant)
            results += measure("kokoa", kokoa_base, "bench.test", [origin, *kokoa_procs], *timing)
        stack.close()
        raw = {} if args.skip_raw else raw_quic(args.duration, args.repeat)
        print()
        print(table(results, raw))


if __name__ == "__main__":
    main()
