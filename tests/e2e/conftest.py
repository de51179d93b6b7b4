from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from common.localrun import LOOPBACK, free_port
from tests.e2e.harness import ServiceSpec, Topology, get, wait_for

DEMO = "demo.test"
RECORD = "record.test"
DOWN = "down.test"


class RecordingOrigin:
    """A raw TCP origin that records every byte it receives and answers `200 ok`.

    Used where a test must prove that nothing reached the origin.
    """

    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.bind((LOOPBACK, 0))
        self.sock.listen(64)
        self.port: int = self.sock.getsockname()[1]
        self.received = bytearray()
        self.connections = 0
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            with self._lock:
                self.connections += 1
            threading.Thread(target=self._handle, args=(conn,), daemon=True).start()

    def _handle(self, conn: socket.socket) -> None:
        with conn:
            while data := conn.recv(65536):
                with self._lock:
                    self.received += data
                if b"\r\n\r\n" in data:
                    conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")

    def close(self) -> None:
        self.sock.close()


@pytest.fixture(scope="module")
def recording_origin() -> Iterator[RecordingOrigin]:
    origin = RecordingOrigin()
    yield origin
    origin.close()


@pytest.fixture(scope="module")
def two_nodes(
    tmp_path_factory: pytest.TempPathFactory, recording_origin: RecordingOrigin
) -> Iterator[Topology]:
    """A demo origin, two ingress nodes and one agent serving three services."""
    origin_port = free_port()
    topo = Topology(
        tmp_path_factory.mktemp("two-nodes"),
        services=[
            ServiceSpec("demo", (DEMO, f"*.{DEMO}"), f"http://{LOOPBACK}:{origin_port}"),
            ServiceSpec("record", (RECORD,), f"http://{LOOPBACK}:{recording_origin.port}"),
            ServiceSpec("down", (DOWN,), f"http://{LOOPBACK}:{free_port()}"),
        ],
    )
    try:
        topo.start_demo_origin(origin_port)
        for name in ("ingress-1", "ingress-2"):
            topo.start_ingress(topo.add_node(name))
        topo.write_agent("agent-1")
        topo.start_agent("agent-1")
        wait_for(
            lambda: get(f"http://{LOOPBACK}:{origin_port}/")[0] == 200, "demo origin", 20, topo
        )
        topo.wait_agents("demo", 1)
        yield topo
    finally:
        topo.stop_all()


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    here = Path(__file__).parent
    for item in items:
        if here in Path(str(item.fspath)).parents:
            item.add_marker(pytest.mark.e2e)
