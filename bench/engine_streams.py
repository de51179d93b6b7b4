"""CPU per request/response exchange of `QuicEngine` alone, with many streams in flight.

    uv run python bench/engine_streams.py [--streams 50,200] [--exchanges 20000] [--repeat 3]

Two engines in one process, joined by a hand-moved wire (no sockets, no event loop, no
TLS handshake cost in the figure): the client keeps `--streams` exchanges in flight (a
200-byte request with FIN, a 100-byte answer with FIN, read at once), and each side handles
everything that arrived before it builds its datagrams once, as the I/O shell batches them.
It prints µs of CPU (process time) per exchange, both ends together, the median of
`--repeat` runs: the transport's per-stream costs without the noise of wrk, nginx and the
other processes on a shared machine. Compare versions with PYTHONPATH pointing at another
checkout of the code.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.append(str(ROOT))  # after PYTHONPATH: another checkout given there wins

from aioquic.quic import events  # noqa: E402
from aioquic.quic.stream import QuicStream  # noqa: E402

from common import pki  # noqa: E402
from common.quic.engine import QuicEngine  # noqa: E402
from common.quic.options import QuicOptions  # noqa: E402
from common.quic.tls import client_configuration, server_configuration  # noqa: E402

CLIENT, SERVER = ("127.0.0.1", 40000), ("127.0.0.1", 4433)
REQUEST, ANSWER = b"q" * 200, b"a" * 100
STEP = 0.0002  # simulated seconds per round


def tls_files(directory: Path) -> tuple[pki.TlsFiles, pki.TlsFiles]:
    ca_key, ca_cert = pki.create_ca("bench CA", days=1)
    pki.write_certificate(directory / "ca.pem", ca_cert)
    files = []
    roles: tuple[tuple[pki.Role, str], ...] = (("agent", "a1"), ("ingress", "in-1"))
    for role, name in roles:
        addresses = ["127.0.0.1"] if role == "ingress" else []
        key, cert = pki.issue_certificate(
            ca_key, ca_cert, role=role, name=name, ip_addresses=addresses, days=1
        )
        assert key is not None
        pki.write_key(directory / f"{name}.key", key)
        pki.write_certificate(directory / f"{name}.pem", cert)
        files.append(
            pki.TlsFiles(
                cert=directory / f"{name}.pem",
                key=directory / f"{name}.key",
                ca=directory / "ca.pem",
            )
        )
    return files[0], files[1]


def run(streams: int, exchanges: int, directory: Path) -> float:
    """µs of CPU per exchange (both engines) with `streams` exchanges in flight."""
    options = QuicOptions(max_incoming_streams=max(1024, 2 * streams))
    agent, ingress = tls_files(directory)
    client = QuicEngine(configuration=client_configuration(agent, options), options=options)
    now = 0.0
    client.connect(SERVER, now=now)
    server = QuicEngine(
        configuration=server_configuration(ingress, options),
        options=options,
        original_destination_connection_id=client.original_destination_connection_id,
    )
    for _ in range(20):  # handshake
        now += 0.002
        for source, target, addr in ((client, server, CLIENT), (server, client, SERVER)):
            for data, _ in source.datagrams_to_send(now=now):
                target.receive_datagram(data, addr, now=now)
        while client.next_event() is not None or server.next_event() is not None:
            pass
    assert client.handshake_confirmed

    in_flight = 0
    started = done = 0
    to_server: list[bytes] = []
    to_client: list[bytes] = []
    cpu0 = time.process_time()
    while done < exchanges:
        now += STEP
        # The client (the ingress's role): keep `streams` requests in flight.
        while in_flight < streams and started < exchanges and client.can_open_stream():
            stream = client.open_stream()
            client.write(stream, REQUEST, end_stream=True)
            in_flight += 1
            started += 1
        for data in to_client:
            client.receive_datagram(data, SERVER, now=now)
        to_client = []
        while (event := client.next_event()) is not None:
            if isinstance(event, events.StreamDataReceived) and event.end_stream:
                in_flight -= 1
                done += 1
        to_server += [data for data, _ in client.datagrams_to_send(now=now)]
        # The server (the agent's role): answer every finished request.
        for data in to_server:
            server.receive_datagram(data, CLIENT, now=now)
        to_server = []
        while (event := server.next_event()) is not None:
            if isinstance(event, events.StreamDataReceived) and event.end_stream:
                state = server.stream(event.stream_id)
                assert state is not None
                server.write(state, ANSWER, end_stream=True)
        to_client += [data for data, _ in server.datagrams_to_send(now=now)]
        for engine in (client, server):
            timer = engine.get_timer()
            if timer is not None and timer <= now:
                engine.handle_timer(now)
    return 1e6 * (time.process_time() - cpu0) / exchanges


def _write(engine: QuicEngine, stream: QuicStream, data: bytes, end_stream: bool = False) -> None:
    assert stream.stream_id is not None
    engine.send_stream_data(stream.stream_id, data, end_stream)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--streams", default="1,50,200", help="exchanges in flight (a list)")
    parser.add_argument("--exchanges", type=int, default=20000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    if not hasattr(QuicEngine, "write"):  # an older checkout: no QuicEngine.write yet
        setattr(QuicEngine, "write", _write)  # noqa: B010
    with tempfile.TemporaryDirectory(prefix="kokoa-engine-") as tmp:
        for streams in (int(s) for s in args.streams.split(",")):
            runs = [run(streams, args.exchanges, Path(tmp)) for _ in range(args.repeat)]
            spread = ", ".join(f"{r:.1f}" for r in runs)
            print(
                f"{streams:4} streams in flight: {statistics.median(runs):6.1f} µs CPU per "
                f"exchange (both ends; runs: {spread})",
                flush=True,
            )


if __name__ == "__main__":
    main()
