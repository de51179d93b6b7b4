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
- **Packets built from the streams that have something to send.** aioquic's
  `_write_application` visits every stream of the connection for every packet it builds
  (stream limits, then the send queue), and once more for the empty packet that ends the
  loop: O(streams) per datagram, 40-150 visits per packet at 50-200 requests in flight. Here
  it visits the *dirty* streams only: those marked where something to send may have appeared
  (see `mark`): data or a FIN queued, credit granted by a read, a reset or STOP_SENDING asked
  for or received, a frame lost, the peer raising MAX_STREAM_DATA / MAX_DATA / MAX_STREAMS, a
  stream created, its last frame acknowledged or its FIN received (to discard it). A visited
  stream leaves the set once it has nothing left to send. The frames and their order within
  a packet are aioquic's; streams are served round robin as there (one that sent goes last),
  in the order they became dirty rather than the order they were created. Once a packet has
  no room for the smallest STREAM frame header, the streams after it are not asked for a
  frame (aioquic asked each, packet after packet: quadratic in the streams written at once;
  its get_frame() returns None then without changing anything).
"""

from __future__ import annotations

from aioquic import tls
from aioquic._buffer import Buffer
from aioquic.buffer import size_uint_var
from aioquic.quic.configuration import QuicConfiguration
from aioquic.quic.connection import (
    CONNECTION_LIMIT_FRAME_CAPACITY,
    MAX_STREAM_DATA_FRAME_CAPACITY,
    RESET_STREAM_FRAME_CAPACITY,
    STOP_SENDING_FRAME_CAPACITY,
    QuicConnection,
    QuicNetworkPath,
    QuicReceiveContext,
    stream_is_client_initiated,
)
from aioquic.quic.events import ConnectionTerminated
from aioquic.quic.packet import QuicFrameType, QuicPacketType
from aioquic.quic.packet_builder import (
    QuicDeliveryState,
    QuicPacketBuilder,
    QuicPacketBuilderStop,
)
from aioquic.quic.recovery import QuicPacketSpace
from aioquic.quic.stream import QuicStream
from cryptography import x509

from common.quic.options import QuicOptions

CREDIT_STEPS = 4  # announce new credit after a quarter of a window was read
UNI_STREAMS = 1  # let the peer open one, so that we see it and close STREAM_NOT_ALLOWED
UNI_WINDOW = 64
ACKED = QuicDeliveryState.ACKED
# The smallest STREAM frame header _write_stream_frame reserves: type, a 1-byte stream ID,
# no offset, a 2-byte length.
MIN_STREAM_FRAME = 3 + 1


class _NewStreams(list[QuicStream]):
    """Stands in for aioquic's `_streams_queue`, which only its `_write_application` reads.

    aioquic appends every stream it creates (ours or the peer's) to that list; here the
    stream is marked dirty instead, and the list stays empty.
    """

    __slots__ = ("_dirty",)

    def __init__(self, dirty: dict[QuicStream, None]) -> None:
        super().__init__()
        self._dirty = dirty

    def append(self, stream: QuicStream) -> None:
        self._dirty[stream] = None


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
        # Streams that may have something to send, in service order (a dict as ordered set).
        self._dirty: dict[QuicStream, None] = {}
        self._streams_queue = _NewStreams(self._dirty)
        self._scan_all = False  # MAX_DATA raised: visit every stream once

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

    def mark(self, stream: QuicStream) -> None:
        """`stream` may have something to send: the next packets visit it."""
        self._dirty[stream] = None

    def write(self, stream: QuicStream, data: bytes, end_stream: bool = False) -> None:
        """Queue `data` (and the FIN) on a stream known to be open for sending.

        Straight to the sender: `send_stream_data()` would look the stream up and check it
        again on every write.
        """
        stream.sender.write(data, end_stream=end_stream)
        self._dirty[stream] = None

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
        self._dirty[stream] = None
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

    # --- dirty streams: aioquic's ways to a stream with something to send ---------------

    def send_stream_data(self, stream_id: int, data: bytes, end_stream: bool = False) -> None:
        super().send_stream_data(stream_id, data, end_stream)
        self._dirty[self._streams[stream_id]] = None

    def reset_stream(self, stream_id: int, error_code: int) -> None:
        super().reset_stream(stream_id, error_code)
        self._mark_id(stream_id)

    def stop_stream(self, stream_id: int, error_code: int) -> None:
        super().stop_stream(stream_id, error_code)
        self._mark_id(stream_id)

    def _mark_id(self, stream_id: int) -> None:
        stream = self._streams.get(stream_id)
        if stream is not None:
            self._dirty[stream] = None

    def _mark_frame(self, buf: Buffer, start: int) -> None:
        """Mark the stream a received frame named first (its ID starts at `start`)."""
        end = buf.tell()
        buf.seek(start)
        stream_id = buf.pull_uint_var()
        buf.seek(end)
        self._mark_id(stream_id)

    def _handle_stream_frame(
        self, context: QuicReceiveContext, frame_type: int, buf: Buffer
    ) -> None:
        # Its data may finish the receiving side: once the sending side is done, it goes.
        start = buf.tell()
        super()._handle_stream_frame(context, frame_type, buf)
        self._mark_frame(buf, start)

    def _handle_reset_stream_frame(
        self, context: QuicReceiveContext, frame_type: int, buf: Buffer
    ) -> None:
        start = buf.tell()
        super()._handle_reset_stream_frame(context, frame_type, buf)
        self._mark_frame(buf, start)

    def _handle_stop_sending_frame(
        self, context: QuicReceiveContext, frame_type: int, buf: Buffer
    ) -> None:
        start = buf.tell()  # aioquic resets our side: a RESET_STREAM is due
        super()._handle_stop_sending_frame(context, frame_type, buf)
        self._mark_frame(buf, start)

    def _handle_max_stream_data_frame(
        self, context: QuicReceiveContext, frame_type: int, buf: Buffer
    ) -> None:
        start = buf.tell()
        super()._handle_max_stream_data_frame(context, frame_type, buf)
        self._mark_frame(buf, start)

    def _handle_max_data_frame(
        self, context: QuicReceiveContext, frame_type: int, buf: Buffer
    ) -> None:
        before = self._remote_max_data
        super()._handle_max_data_frame(context, frame_type, buf)
        if self._remote_max_data > before:  # any stream may have waited for it
            self._scan_all = True

    def _unblock_streams(self, is_unidirectional: bool) -> None:
        blocked = self._streams_blocked_uni if is_unidirectional else self._streams_blocked_bidi
        waiting = list(blocked)
        super()._unblock_streams(is_unidirectional)
        for stream in waiting[: len(waiting) - len(blocked)]:  # aioquic pops from the front
            self._dirty[stream] = None

    def _on_max_stream_data_delivery(self, delivery: QuicDeliveryState, stream: QuicStream) -> None:
        super()._on_max_stream_data_delivery(delivery, stream)
        if delivery != ACKED:
            self._dirty[stream] = None

    def _on_stream_data_delivery(
        self, delivery: QuicDeliveryState, stream: QuicStream, start: int, stop: int, fin: bool
    ) -> None:
        sender = stream.sender
        sender.on_data_delivery(delivery, start, stop, fin)
        if delivery != ACKED or sender.is_finished:  # to resend, or to discard
            self._dirty[stream] = None

    def _on_reset_delivery(self, delivery: QuicDeliveryState, stream: QuicStream) -> None:
        stream.sender.on_reset_delivery(delivery)
        self._dirty[stream] = None  # to resend, or to discard

    def _on_stop_sending_delivery(self, delivery: QuicDeliveryState, stream: QuicStream) -> None:
        stream.receiver.on_stop_sending_delivery(delivery)
        if delivery != ACKED:
            self._dirty[stream] = None

    # --- aioquic's packet builder, over the dirty streams --------------------------------

    def _write_application(
        self, builder: QuicPacketBuilder, network_path: QuicNetworkPath, now: float
    ) -> None:
        # aioquic 1.7.2's, but for the two loops over streams (marked "dirty" below).
        crypto_stream: QuicStream | None = None
        if self._cryptos[tls.Epoch.ONE_RTT].send.is_valid():
            crypto = self._cryptos[tls.Epoch.ONE_RTT]
            crypto_stream = self._crypto_streams[tls.Epoch.ONE_RTT]
            packet_type = QuicPacketType.ONE_RTT
        elif self._cryptos[tls.Epoch.ZERO_RTT].send.is_valid():  # pragma: no cover - no 0-RTT
            crypto = self._cryptos[tls.Epoch.ZERO_RTT]
            packet_type = QuicPacketType.ZERO_RTT
        else:
            return
        space = self._spaces[tls.Epoch.ONE_RTT]
        dirty = self._dirty
        if self._scan_all:  # dirty: every stream, once
            self._scan_all = False
            for stream in self._streams.values():
                dirty[stream] = None

        while True:
            # apply pacing, except if we have ACKs to send
            if space.ack_at is None or space.ack_at >= now:
                self._pacing_at = self._loss._pacer.next_send_time(now=now)
                if self._pacing_at is not None:
                    break
            builder.start_packet(packet_type, crypto)

            if (
                packet_type == QuicPacketType.ONE_RTT
                and space.ack_at is not None
                and space.ack_at <= now
            ):
                self._write_ack_frame(builder=builder, space=space, now=now)

            if self._handshake_complete:
                if not (network_path.is_validated or network_path.local_challenge_sent):
                    self._write_path_challenge_frame(builder=builder, network_path=network_path)
                    if network_path.validation_deadline is None:
                        network_path.validation_deadline = now + 3 * max(
                            self._loss.get_probe_timeout(),
                            2 * self._configuration.initial_rtt,
                        )

                if self._handshake_done_pending:
                    self._write_handshake_done_frame(builder=builder)
                    self._handshake_done_pending = False

                while len(network_path.remote_challenges) > 0:
                    self._write_path_response_frame(
                        builder=builder, challenge=network_path.remote_challenges[0]
                    )
                    network_path.remote_challenges.popleft()

                for connection_id in self._host_cids:
                    if not connection_id.was_sent:
                        self._write_new_connection_id_frame(
                            builder=builder, connection_id=connection_id
                        )

                for sequence_number in self._retire_connection_ids[:]:
                    self._write_retire_connection_id_frame(
                        builder=builder, sequence_number=sequence_number
                    )
                    self._retire_connection_ids.pop(0)

                if self._streams_blocked_pending:
                    if self._streams_blocked_bidi:
                        self._write_streams_blocked_frame(
                            builder=builder,
                            frame_type=QuicFrameType.STREAMS_BLOCKED_BIDI,
                            limit=self._remote_max_streams_bidi,
                        )
                    if self._streams_blocked_uni:
                        self._write_streams_blocked_frame(
                            builder=builder,
                            frame_type=QuicFrameType.STREAMS_BLOCKED_UNI,
                            limit=self._remote_max_streams_uni,
                        )
                    self._streams_blocked_pending = False

                self._write_connection_limits(builder=builder, space=space)

            # stream-level limits (dirty streams only; the check is _write_stream_limits')
            for stream in dirty:
                if (
                    stream.max_stream_data_local_sent != stream.max_stream_data_local
                    and not stream.receiver.is_finished
                ):
                    self._write_stream_limits(builder=builder, space=space, stream=stream)

            if self._ping_pending:
                self._write_ping_frame(builder, self._ping_pending)
                self._ping_pending.clear()

            if self._probe_pending:
                self._write_ping_frame(builder, comment="probe")
                self._probe_pending = False

            if crypto_stream is not None and not crypto_stream.sender.buffer_is_empty:
                self._write_crypto_frame(builder=builder, space=space, stream=crypto_stream)

            while self._datagrams_pending:
                try:
                    self._write_datagram_frame(
                        builder=builder,
                        data=self._datagrams_pending[0],
                        frame_type=QuicFrameType.DATAGRAM_WITH_LENGTH,
                    )
                    self._datagrams_pending.popleft()
                except QuicPacketBuilderStop:
                    break

            # stream frames (dirty streams only, in service order)
            sent: list[QuicStream] = []
            done: list[QuicStream] = []  # nothing left to send: leaves the dirty set
            discarded = False
            try:
                for stream in list(dirty):
                    if stream.is_finished:
                        done.append(stream)
                        if self._streams.pop(stream.stream_id, None) is stream and (  # type: ignore[arg-type]
                            stream_is_client_initiated(stream.stream_id) != self._is_client  # type: ignore[arg-type]
                        ):
                            # Let the peer open a new stream for each one that closes.
                            self._stream_limit(stream.stream_id).value += 1  # type: ignore[arg-type]
                        discarded = True
                        continue

                    receiver, sender = stream.receiver, stream.sender
                    if receiver.stop_pending:
                        self._write_stop_sending_frame(builder=builder, stream=stream)

                    if sender.reset_pending:
                        self._write_reset_stream_frame(builder=builder, stream=stream)
                    elif (
                        not stream.is_blocked
                        and not sender.buffer_is_empty
                        # Below the smallest frame header no stream's get_frame() would
                        # return a frame (nor change anything): the packet is full.
                        and builder.remaining_flight_space >= MIN_STREAM_FRAME
                    ):
                        used = self._write_stream_frame(
                            builder=builder,
                            space=space,
                            stream=stream,
                            max_offset=min(
                                sender.highest_offset
                                + self._remote_max_data
                                - self._remote_max_data_used,
                                stream.max_stream_data_remote,
                            ),
                        )
                        self._remote_max_data_used += used
                        if used > 0:
                            sent.append(stream)

                    if not (
                        receiver.stop_pending
                        or sender.reset_pending
                        or (not stream.is_blocked and not sender.buffer_is_empty)
                    ):
                        done.append(stream)
            finally:
                # As aioquic: streams that sent go to the end of the service order.
                for stream in done:
                    dirty.pop(stream, None)
                for stream in sent:
                    if dirty.pop(stream, 0) is None:
                        dirty[stream] = None

            if builder.packet_is_empty:
                # Discarded streams may let the peer open new ones, which the next
                # packet announces with MAX_STREAMS.
                if not discarded:
                    break
            else:
                self._loss._pacer.update_after_send(now=now)

    def _write_stream_frame(
        self,
        builder: QuicPacketBuilder,
        space: QuicPacketSpace,  # noqa: ARG002
        stream: QuicStream,
        max_offset: int,
    ) -> int:
        # aioquic's, with a delivery handler of ours (it marks the stream).
        sender = stream.sender
        frame_overhead = (
            3
            + size_uint_var(stream.stream_id)  # type: ignore[arg-type]
            + (size_uint_var(sender.next_offset) if sender.next_offset else 0)
        )
        previous_send_highest = sender.highest_offset
        frame = sender.get_frame(builder.remaining_flight_space - frame_overhead, max_offset)
        if frame is None:
            return 0
        frame_type = QuicFrameType.STREAM_BASE | 2  # length
        if frame.offset:
            frame_type |= 4
        if frame.fin:
            frame_type |= 1
        buf = builder.start_frame(
            frame_type,
            capacity=frame_overhead,
            handler=self._on_stream_data_delivery,
            handler_args=(stream, frame.offset, frame.offset + len(frame.data), frame.fin),
        )
        buf.push_uint_var(stream.stream_id)  # type: ignore[arg-type]
        if frame.offset:
            buf.push_uint_var(frame.offset)
        buf.push_uint16(len(frame.data) | 0x4000)
        buf.push_bytes(frame.data)
        if self._quic_logger is not None and builder.quic_logger_frames is not None:
            builder.quic_logger_frames.append(
                self._quic_logger.encode_stream_frame(frame, stream_id=stream.stream_id)  # type: ignore[arg-type]
            )
        if not sender._pending_eof and len(sender._pending) == 0:
            # What get_frame() would find on the next visit (it sets this and returns None):
            # the stream leaves the dirty set now instead of one more visit later.
            sender.buffer_is_empty = True
        return sender.highest_offset - previous_send_highest

    def _write_reset_stream_frame(self, builder: QuicPacketBuilder, stream: QuicStream) -> None:
        # aioquic's, with a delivery handler of ours (it marks the stream).
        buf = builder.start_frame(
            frame_type=QuicFrameType.RESET_STREAM,
            capacity=RESET_STREAM_FRAME_CAPACITY,
            handler=self._on_reset_delivery,
            handler_args=(stream,),
        )
        frame = stream.sender.get_reset_frame()
        buf.push_uint_var(frame.stream_id)
        buf.push_uint_var(frame.error_code)
        buf.push_uint_var(frame.final_size)
        if self._quic_logger is not None and builder.quic_logger_frames is not None:
            builder.quic_logger_frames.append(
                self._quic_logger.encode_reset_stream_frame(
                    error_code=frame.error_code,
                    final_size=frame.final_size,
                    stream_id=frame.stream_id,
                )
            )

    def _write_stop_sending_frame(self, builder: QuicPacketBuilder, stream: QuicStream) -> None:
        # aioquic's, with a delivery handler of ours (it marks the stream).
        buf = builder.start_frame(
            frame_type=QuicFrameType.STOP_SENDING,
            capacity=STOP_SENDING_FRAME_CAPACITY,
            handler=self._on_stop_sending_delivery,
            handler_args=(stream,),
        )
        frame = stream.receiver.get_stop_frame()
        buf.push_uint_var(frame.stream_id)
        buf.push_uint_var(frame.error_code)
        if self._quic_logger is not None and builder.quic_logger_frames is not None:
            builder.quic_logger_frames.append(
                self._quic_logger.encode_stop_sending_frame(
                    error_code=frame.error_code, stream_id=frame.stream_id
                )
            )
