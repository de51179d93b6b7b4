"""The agent's end of a control stream: whole control messages in and out.

Peer mistakes (a bad preface or frame, FIN or a reset on the control stream) become
`ProtocolViolation`; `ConnectionClosed` passes through for the tunnel to classify.
"""

from __future__ import annotations

import asyncio

from common.transport import StreamReset, TunnelStream
from common.wire import ControlMessage, ControlReader, ProtocolError, encode_control
from edge.tunnel_errors import ProtocolViolation

READ_SIZE = 65536


class ControlChannel:
    """Sends and receives control messages on one stream; sends never interleave."""

    def __init__(self, stream: TunnelStream) -> None:
        self.stream = stream
        self._reader = ControlReader()
        self._lock = asyncio.Lock()
        self._prefaced = False

    async def send(self, message: ControlMessage) -> None:
        """Write one message (after the stream preface, the first time).

        Raises:
            ProtocolViolation: the node stopped reading the control stream.
            ConnectionClosed: the connection is gone.
        """
        async with self._lock:
            data = encode_control(message, preface=not self._prefaced)
            self._prefaced = True
            try:
                await self.stream.write(data)
            except StreamReset as exc:
                raise ProtocolViolation(f"control stream stopped with {exc.code:#x}") from None

    async def receive(self) -> list[ControlMessage]:
        """Read once; return the messages completed (maybe none: a partial or unknown frame).

        Raises:
            ProtocolViolation: malformed input, FIN or a reset on the control stream.
            ConnectionClosed: the connection is gone.
        """
        try:
            data = await self.stream.read(READ_SIZE)
            if not data:
                self._reader.feed_eof()
                raise ProtocolViolation("the node ended the control stream")
            return self._reader.feed(data)
        except ProtocolError as exc:
            raise ProtocolViolation(f"control stream: {exc.message}") from None
        except StreamReset as exc:
            raise ProtocolViolation(f"control stream reset with {exc.code:#x}") from None
