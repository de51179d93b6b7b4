"""aioquic's sans-IO `QuicConnection`, with the parts Kokoa must own.

Pinned to aioquic 1.7.x: this module is the only one that touches aioquic's private state, so
an upgrade is checked here (and by tests/common/test_quic_engine.py).

- **Receive credit tied to what the application read.** aioquic doubles a window whenever
  half of it has *arrived*, so a peer can fill memory faster than we read. Here a stream's
  MAX_STREAM_DATA is `bytes read + stream_window` and the connection's MAX_DATA is
  `bytes received - bytes unread + connection_window`: a slow reader holds at most one window
  per stream and one per connection. Credit is re-announced once a quarter window was read.
- **Client certificates.** aioquic's server only asks for one behind a private flag, and never
  verifies it; the server sets the flag here and `PeerVerifier` checks the chain.
- **Who closed.** aioquic's ConnectionTerminated does not say; `closed_by_peer` does.
- **No 0-RTT.** No session tickets are issued or used, and the server accepts no early data.
"""

from __future__ import annotations

from aioquic.quic.configuration import QuicConfiguration
from aioquic.quic.connection import (
    CONNECTION_LIMIT_FRAME_CAPACITY,
    MAX_STREAM_DATA_FRAME_CAPACITY,
    QuicConnection,
)
from aioquic.quic.events import ConnectionTerminated
from aioquic.quic.packet import QuicFrameType
from aioquic.quic.packet_builder import QuicPacketBuilder
from aioquic.quic.recovery import QuicPacketSpace
from aioquic.quic.stream import QuicStream
from cryptography import x509

from common.quic.options import QuicOptions

CREDIT_STEPS = 4  # announce new credit after a quarter of a window was read
UNI_STREAMS = 1  # let the peer open one, so that we see it and close STREAM_NOT_ALLOWED
UNI_WINDOW = 64


class QuicEngine(QuicConnection):
    """A `QuicConnection` with application-paced receive credit; see the module docstring."""

    def __init__(
        self,
        *,
        configuration: QuicConfiguration,
        options: QuicOptions,
        original_destination_connection_id: bytes | None = None,
    ) -> None:
        super().__init__(
            configuration=configuration,
            original_destination_connection_id=original_destination_connection_id,
        )
        self.unread = 0  # bytes delivered to the shell's stream buffers and not yet read
        self.closed_by_peer = False
        self._stream_window = options.stream_window
        self._stream_step = options.stream_window // CREDIT_STEPS
        self._connection_window = options.connection_window
        self._connection_step = options.connection_window // CREDIT_STEPS
        # Initial limits, announced in the transport parameters (serialised in _initialize).
        self._local_max_data.value = self._local_max_data.sent = options.connection_window
        self._local_max_stream_data_bidi_local = options.stream_window
        self._local_max_stream_data_bidi_remote = options.stream_window
        self._local_max_stream_data_uni = UNI_WINDOW
        bidi, uni = self._local_max_streams_bidi, self._local_max_streams_uni
        bidi.value = bidi.sent = options.max_incoming_streams
        uni.value = uni.sent = UNI_STREAMS

    # --- what the shell asks -------------------------------------------------------------

    @property
    def close_event(self) -> ConnectionTerminated | None:
        """Why the connection is closing, once it is (set before ConnectionTerminated)."""
        return self._close_event

    @property
    def handshake_confirmed(self) -> bool:
        return self._handshake_confirmed

    @property
    def rtt(self) -> float:
        loss = self._loss
        return loss._rtt_smoothed if loss._rtt_initialized else loss._rtt_initial

    def peer_certificates(self) -> tuple[x509.Certificate | None, list[x509.Certificate]]:
        """The peer's leaf certificate (None if it sent none) and the rest of its chain."""
        return self.tls._peer_certificate, list(self.tls._peer_certificate_chain)

    def can_open_stream(self) -> bool:
        """Whether the peer's MAX_STREAMS lets us open another bidirectional stream now."""
        return self._local_next_stream_id_bidi // 4 < self._remote_max_streams_bidi

    def open_stream(self) -> QuicStream:
        """Create our next bidirectional stream (nothing is sent until data is)."""
        stream_id = self.get_next_available_stream_id()
        self.send_stream_data(stream_id, b"")
        return self._streams[stream_id]

    def stream(self, stream_id: int) -> QuicStream | None:
        return self._streams.get(stream_id)

    @staticmethod
    def send_buffered(stream: QuicStream) -> int:
        """Bytes queued on `stream` and not yet acknowledged by the peer."""
        sender = stream.sender
        return sender._buffer_stop - sender._buffer_start

    def stream_consumed(self, stream: QuicStream, consumed: int) -> bool:
        """The application has read `consumed` bytes of `stream` in all.

        Returns True when a MAX_STREAM_DATA frame is now due (the caller transmits).
        """
        limit = consumed + self._stream_window
        if stream.receiver.is_finished or limit - stream.max_stream_data_local_sent < (
            self._stream_step
        ):
            return False
        if limit > stream.max_stream_data_local:
            stream.max_stream_data_local = limit
        return True

    def connection_consumed(self) -> bool:
        """Re-evaluate MAX_DATA after reads or discards; True when a frame is now due."""
        limit = self._local_max_data
        target = limit.used - self.unread + self._connection_window
        if target - limit.sent < self._connection_step:
            return False
        if target > limit.value:
            limit.value = target
        return True

    # --- aioquic overrides ---------------------------------------------------------------

    def _initialize(self, peer_cid: bytes) -> None:
        super()._initialize(peer_cid)
        if not self._is_client:
            if not hasattr(self.tls, "_request_client_certificate"):  # pragma: no cover
                raise RuntimeError("this aioquic cannot request client certificates")
            self.tls._request_client_certificate = True
            self.tls._max_early_data = None  # no 0-RTT
        self.tls.get_session_ticket_cb = None
        self.tls.new_session_ticket_cb = None

    def _close_begin(self, is_initiator: bool, now: float) -> None:
        if not is_initiator:
            self.closed_by_peer = True
        super()._close_begin(is_initiator=is_initiator, now=now)

    def _write_stream_limits(
        self,
        builder: QuicPacketBuilder,
        space: QuicPacketSpace,  # noqa: ARG002
        stream: QuicStream,
    ) -> None:
        # No doubling: only what stream_consumed() granted (or a lost frame) is sent.
        limit = stream.max_stream_data_local
        if stream.max_stream_data_local_sent == limit or stream.receiver.is_finished:
            return
        buf = builder.start_frame(
            QuicFrameType.MAX_STREAM_DATA,
            capacity=MAX_STREAM_DATA_FRAME_CAPACITY,
            handler=self._on_max_stream_data_delivery,
            handler_args=(stream,),
        )
        buf.push_uint_var(stream.stream_id)  # type: ignore[arg-type]
        buf.push_uint_var(limit)
        stream.max_stream_data_local_sent = limit

    def _write_connection_limits(
        self,
        builder: QuicPacketBuilder,
        space: QuicPacketSpace,  # noqa: ARG002
    ) -> None:
        # As aioquic's, without doubling MAX_DATA (connection_consumed() raises it).
        for limit in (
            self._local_max_data,
            self._local_max_streams_bidi,
            self._local_max_streams_uni,
        ):
            if limit.value == limit.sent:
                continue
            if limit is not self._local_max_data and (
                limit.sent - limit.used >= limit.value - limit.sent
            ):
                continue  # batch MAX_STREAMS until the peer has used up half of them
            buf = builder.start_frame(
                limit.frame_type,
                capacity=CONNECTION_LIMIT_FRAME_CAPACITY,
                handler=self._on_connection_limit_delivery,
                handler_args=(limit,),
            )
            buf.push_uint_var(limit.value)
            limit.sent = limit.value
