"""A real control plane for end-to-end tests: uvicorn over HTTPS (a trustme CA that only the
test trusts) on 127.0.0.1, in a thread of the test process, on a fresh SQLite database."""

from __future__ import annotations

import socket
import ssl
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import trustme
import uvicorn

from control.main import create_app
from control.settings import Settings
from tests.control.conftest import _migrate, run_in_thread
from tests.control.databases import sqlite_url
from tests.control.enroll_support import Owner, owner
from tests.control.helpers import test_settings


@dataclass(frozen=True)
class ControlPlane:
    url: str
    ca_file: Path  # what --control-ca names
    settings: Settings

    @property
    def verify(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=str(self.ca_file))

    def owner(self) -> Owner:
        return owner(self.url, verify=self.verify)


@contextmanager
def control_plane(root: Path, **overrides: Any) -> Iterator[ControlPlane]:
    """Serve a migrated control plane until the block ends (open sign-up, for the owner)."""
    root.mkdir(parents=True, exist_ok=True)
    url = sqlite_url(root / "control.db")
    run_in_thread(_migrate(url))
    settings = test_settings(url, root, open_signup=True, **overrides)
    ca = trustme.CA()
    ca.cert_pem.write_to_path(str(root / "control-ca.pem"))
    leaf = ca.issue_cert("127.0.0.1")
    leaf.private_key_and_cert_chain_pem.write_to_path(str(root / "control.pem"))
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(
        create_app(settings),
        log_level="warning",
        access_log=False,
        ssl_certfile=str(root / "control.pem"),
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, name="control")
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the control plane did not start")
        time.sleep(0.02)
    try:
        yield ControlPlane(f"https://127.0.0.1:{port}", root / "control-ca.pem", settings)
    finally:
        server.should_exit = True
        thread.join(timeout=20)
        sock.close()
