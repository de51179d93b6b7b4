"""What `kokoa local up` needs to run processes on loopback: ports, the `kokoa` command line,
child processes stopped by PID, and bounded waits.

Imports nothing of the other packages (common/ depends on nothing else).
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

LOOPBACK = "127.0.0.1"


def free_port(kind: int = socket.SOCK_STREAM) -> int:
    """A port that is free right now on 127.0.0.1 (TCP or UDP)."""
    with socket.socket(socket.AF_INET, kind) as sock:
        sock.bind((LOOPBACK, 0))
        port: int = sock.getsockname()[1]
        return port


def port_or_free(preferred: int, kind: int = socket.SOCK_STREAM) -> int:
    with socket.socket(socket.AF_INET, kind) as sock:
        try:
            sock.bind((LOOPBACK, preferred))
        except OSError:
            return free_port(kind)
    return preferred


def kokoa_command(*args: str) -> list[str]:
    """The `kokoa` CLI of this very interpreter (works inside or outside the venv)."""
    return [sys.executable, "-m", "common.cli", *args]


@dataclass
class Processes:
    """Child processes we started, stopped by PID in reverse order."""

    log_dir: Path
    children: list[tuple[str, subprocess.Popen[bytes]]] = field(default_factory=list)

    def start(
        self, name: str, argv: Sequence[str], env: Mapping[str, str] | None = None
    ) -> subprocess.Popen[bytes]:
        """Start `argv` with its output in `<log_dir>/<name>.log`; `env` adds variables."""
        self.log_dir.mkdir(parents=True, exist_ok=True)
        log = (self.log_dir / f"{name}.log").open("ab")
        environ = {**os.environ, **env} if env else None
        proc = subprocess.Popen(
            argv, stdout=log, stderr=subprocess.STDOUT, cwd=self.log_dir.parent, env=environ
        )
        log.close()
        self.children.append((name, proc))
        return proc

    def check_alive(self) -> None:
        for name, proc in self.children:
            if proc.poll() is not None:
                raise RuntimeError(
                    f"{name} exited with code {proc.returncode}; see {self.log_dir / name}.log"
                )

    def stop(self, timeout: float = 10.0) -> None:
        """SIGTERM to every child, last started first; SIGKILL what is left after `timeout`."""
        for _name, proc in reversed(self.children):
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + timeout
        for _name, proc in reversed(self.children):
            try:
                proc.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        self.children.clear()


def http_get(url: str, *, host: str | None = None, timeout: float = 2.0) -> tuple[int, bytes]:
    request = urllib.request.Request(url, headers={"Host": host} if host else {})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return int(response.status), bytes(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def wait_until(
    check: str, probe: Callable[[], bool], procs: Processes, timeout: float = 30.0
) -> None:
    """Poll `probe` every 0.1 s until it is true; fail if a child exits or after `timeout`."""
    deadline = time.monotonic() + timeout
    while True:
        procs.check_alive()
        try:
            if probe():
                return
        except OSError:
            pass
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out waiting for {check}")
        time.sleep(0.1)
