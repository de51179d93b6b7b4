"""QuicEngine without sockets: two engines joined by a hand-moved wire (aioquic's own test style).

These pin the aioquic internals the engine relies on (aioquic 1.7.x): if an upgrade changes
them, these fail before anything subtler does.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from aioquic.quic import events
from aioquic.quic.stream import QuicStream

from common.quic.engine import QuicEngine
from common.quic.options import QuicOptions
from common.quic.tls import client_configuration, server_configuration
from tests.common.quic_support import Authority

CLIENT, SERVER = ("127.0.0.1", 40000), ("127.0.0.1", 4433)
WINDOW = 64 << 10
OPTIONS = QuicOptions(stream_window=WINDOW, connection_window=4 * WINDOW)


class Wire:
    """A client and a server engine, and a clock that moves only when told."""

    def __init__(self, ca: Authority, options: QuicOptions = OPTIONS) -> None:
        self.now = 0.0
        self.client = QuicEngine(
            configuration=client_configuration(ca.issue("agent", "a1"), options), options=options
        )
        self.client.connect(SERVER, now=self.now)
        self.server = QuicEngine(
            configuration=server_configuration(ca.issue("ingress", "in-1"), options),
            options=options,
            original_destination_connection_id=self.client.original_destination_connection_id,
        )
        self.received: dict[int, bytearray] = {}
        self.pump()

    def pump(self, rounds: int = 50) -> None:
        for _ in range(rounds):
            self.now += 0.002
            moved = self._move(self.client, self.server, CLIENT)
            moved += self._move(self.server, self.client, SERVER)
            for engine in (self.client, self.server):
                timer = engine.get_timer()
                if timer is not None and timer <= self.now:
                    engine.handle_timer(self.now)
            self._collect()
            if not moved:
                return

    def _move(self, source: QuicEngine, target: QuicEngine, addr: tuple[str, int]) -> int:
        datagrams = source.datagrams_to_send(now=self.now)
        for data, _ in datagrams:
            target.receive_datagram(data, addr, now=self.now)
        return len(datagrams)

    def _collect(self) -> None:
        while (event := self.server.next_event()) is not None:
            if isinstance(event, events.StreamDataReceived):
                self.received.setdefault(event.stream_id, bytearray()).extend(event.data)
        while self.client.next_event() is not None:
            pass


def sid(stream: QuicStream) -> int:
    assert stream.stream_id is not None
    return stream.stream_id


@pytest.fixture
def wire(tmp_path: Path) -> Wire:
    return Wire(Authority(tmp_path / "ca"))


def test_server_asks_for_and_receives_the_client_certificate(wire: Wire) -> None:
    assert wire.client.handshake_confirmed
    leaf, chain = wire.server.peer_certificates()
    assert leaf is not None and chain == []
    assert "urn:kokoa:agent:a1" in str(leaf.extensions)
    server_leaf, _ = wire.client.peer_certificates()
    assert server_leaf is not None and "urn:kokoa:ingress:in-1" in str(server_leaf.extensions)


def test_no_session_tickets_no_early_data(wire: Wire) -> None:
    assert wire.server.tls.new_session_ticket_cb is None
    assert wire.client.tls.session_ticket is None
    assert not wire.client.tls.early_data_accepted


def test_receive_credit_follows_reads_not_arrivals(wire: Wire) -> None:
    stream = wire.client.open_stream()
    wire.client.send_stream_data(sid(stream), b"x" * (4 * WINDOW))
    wire.pump()
    assert len(wire.received[0]) == WINDOW  # aioquic alone would have doubled the window
    assert QuicEngine.send_buffered(stream) == 3 * WINDOW  # the rest waits, unsent
    server_stream = wire.server.stream(0)
    assert server_stream is not None
    # Reading less than a quarter window announces nothing…
    assert not wire.server.stream_consumed(server_stream, WINDOW // 8)
    wire.pump()
    assert len(wire.received[0]) == WINDOW
    # …a quarter does, and exactly `read + window` is granted.
    assert wire.server.stream_consumed(server_stream, WINDOW // 2)
    wire.pump()
    assert len(wire.received[0]) == WINDOW + WINDOW // 2


def test_connection_credit_counts_unread_bytes(wire: Wire) -> None:
    for _ in range(6):  # six streams of one window each: only four windows fit the connection
        stream = wire.client.open_stream()
        wire.client.send_stream_data(sid(stream), b"y" * WINDOW)
    wire.pump()
    total = sum(len(data) for data in wire.received.values())
    assert total == 4 * WINDOW
    wire.server.unread = total  # the shell holds it all, unread
    assert not wire.server.connection_consumed()
    wire.server.unread = total - WINDOW  # one window read
    assert wire.server.connection_consumed()
    wire.pump()
    assert sum(len(data) for data in wire.received.values()) == 5 * WINDOW


def test_acknowledged_bytes_leave_the_send_buffer(wire: Wire) -> None:
    stream = wire.client.open_stream()
    wire.client.send_stream_data(sid(stream), b"z" * 10_000)
    assert QuicEngine.send_buffered(stream) == 10_000
    wire.pump()
    assert QuicEngine.send_buffered(stream) == 0


def test_close_side_is_recorded(wire: Wire) -> None:
    wire.server.close(error_code=0x105, reason_phrase="bye")
    wire.pump()
    assert wire.client.closed_by_peer and not wire.server.closed_by_peer
    event = wire.client.close_event
    assert event is not None and (event.error_code, event.frame_type) == (0x105, None)


def test_stream_limits_come_from_options(tmp_path: Path) -> None:
    wire = Wire(Authority(tmp_path / "ca"), QuicOptions(max_incoming_streams=3))
    for _ in range(3):
        assert wire.client.can_open_stream()
        wire.client.send_stream_data(sid(wire.client.open_stream()), b"s", end_stream=True)
    assert not wire.client.can_open_stream()
    assert wire.client._remote_max_streams_uni == 1  # one, to see it and refuse it
    assert wire.client.rtt > 0
