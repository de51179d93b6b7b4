"""One connection to an origin: HTTP/1.1 exchanges parsed by httptools, or a raw byte pipe.

An asyncio `Protocol`, so both directions have real flow control without extra copies:

* origin → agent: body bytes wait in a `ReceiveBuffer` until the proxy `read`s them; it stops
  reading the socket while too much is buffered, so a slow tunnel slows the origin.
* agent → origin: `drain` waits while the transport's write buffer is above its high-water
  mark (`pause_writing`/`resume_writing`).

Responses are parsed by llhttp (httptools); we never look at HTTP bytes ourselves. A request
starts with `begin` (one at a time, never pipelined); interim 1xx responses other than 101 are
skipped; a 101 to an upgrade request switches the connection to raw mode, where bytes pass
through unparsed. `read_timeout` bounds every wait for the origin (first response byte, each
body read, each drain) in HTTP mode; raw pipes (upgrades, TCP) may idle indefinitely.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import cast

import httptools

from edge.origin_buffer import ReceiveBuffer
from edge.origin_config import OriginAddress
from edge.origin_errors import OriginClosed, OriginError, OriginProtocolError, OriginTimeout
from edge.origin_messages import Headers, OriginRequest, OriginResponse

READ_SIZE = 256 * 1024
_NO_REQUEST = OriginRequest(b"", "")


class _StopParsing(Exception):
    """Raised from a parser callback: the head of a response to HEAD is all there is."""


@dataclass(slots=True)
class _Exchange:
    """The state of one request/response on the connection."""

    request: OriginRequest
    timeout: float | None
    request_sent: bool = False
    headers: list[tuple[bytes, bytes]] = field(default_factory=list)
    head_bytes: int = 0  # bytes received before the head was complete
    header_bytes: int = 0  # sizes of the header fields so far
    response: OriginResponse | None = None
    interim: bool = False  # the message being parsed is a 1xx to skip
    received: bool = False  # any byte of the response arrived
    done: bool = False  # the response is complete
    until_eof: bool = False  # its body is delimited by the origin closing
    stopped: bool = False  # parsing stopped after the head of a response to HEAD


class OriginConnection(asyncio.Protocol):
    """A connection to one origin address; see the module docstring."""

    def __init__(self, address: OriginAddress, *, max_head_size: int, raw: bool = False) -> None:
        self.address = address
        self.max_head_size = max_head_size
        self.requests = 0
        self.idle_since = 0.0
        self.on_lost: Callable[[OriginConnection], None] | None = None
        self._transport: asyncio.Transport | None = None
        self._parser = httptools.HttpResponseParser(self)
        self._x = _Exchange(_NO_REQUEST, None, request_sent=True)
        self._active = False
        self._raw = raw
        self._buffer = ReceiveBuffer()
        self._writing_paused = False
        self._waiter: asyncio.Future[None] | None = None
        self._drain_waiter: asyncio.Future[None] | None = None
        self._error: OriginError | None = None
        self._eof = False
        self._closed = False

    # ---- the proxy's side ---------------------------------------------------------------

    def begin(self, request: OriginRequest, *, read_timeout: float) -> None:
        """Send a request head and get ready for its response.

        Raises:
            OriginClosed: the connection is gone.
        """
        if self._active or self._raw:
            raise RuntimeError("an exchange is already in progress on this connection")
        self._x = _Exchange(request, read_timeout, request_sent=not request.has_body)
        self._active = True
        self.requests += 1
        self.write(request.head)

    def send_body(self, data: bytes) -> None:
        """Send request body bytes (raw mode: any bytes), chunk-framed when so requested."""
        if self._x.request.chunked and not self._raw:
            self.writelines((b"%x\r\n" % len(data), data, b"\r\n"))
        else:
            self.write(data)

    def end_body(self) -> None:
        """The request body is complete (writes the last chunk when chunk-framed)."""
        if self._x.request.chunked:
            self.write(b"0\r\n\r\n")
        self._x.request_sent = True

    async def response(self) -> OriginResponse:
        """Wait for the final response head (1xx other than 101 skipped).

        Raises:
            OriginTimeout, OriginClosed, OriginProtocolError.
        """
        while self._x.response is None:
            await self._wait()
        return self._x.response

    async def read(self, max_bytes: int = READ_SIZE) -> bytes:
        """Next response body bytes (raw mode: next bytes), or b"" at the end.

        Raises:
            OriginTimeout, OriginClosed, OriginProtocolError: before the end was reached.
        """
        while not self._buffer:
            if self._raw and self._eof:
                if self._error is not None:
                    raise self._error
                return b""
            if self._x.done and not self._raw:
                return b""  # the message is complete, whatever happens to the socket later
            await self._wait()
        return self._buffer.take(max_bytes)

    def write(self, data: bytes) -> None:
        self._writable().write(data)

    def writelines(self, parts: Iterable[bytes]) -> None:
        self._writable().writelines(parts)

    async def drain(self) -> None:
        """Wait until the origin has taken enough of what we wrote.

        Raises:
            OriginClosed: the connection is gone. OriginTimeout: no progress in time.
        """
        self._writable()
        if not self._writing_paused:
            return
        waiter = asyncio.get_running_loop().create_future()
        self._drain_waiter = waiter
        try:
            await self._bounded(waiter, "accept the request body")
        finally:
            self._drain_waiter = None
        self._writable()

    def write_eof(self) -> None:
        """Half-close towards the origin where the transport can (not over TLS)."""
        transport = self._transport
        if transport is not None and not transport.is_closing() and transport.can_write_eof():
            transport.write_eof()

    @property
    def request_sent(self) -> bool:
        """The whole request (head and body) has been handed to the transport."""
        return self._x.request_sent

    @property
    def reusable(self) -> bool:
        """The exchange ended cleanly and the origin keeps the connection alive."""
        x = self._x
        clean = self._active and x.done and x.request_sent and self._error is None
        kept = x.response is not None and x.response.keep_alive and not x.request.upgrade
        return clean and kept and not (self._raw or x.stopped or self._eof or self._buffer)

    @property
    def idle_alive(self) -> bool:
        """An idle (pooled) connection that the origin has not closed."""
        return not (self._active or self._raw or self._eof or self._closed)

    def finish(self) -> None:
        """The exchange is over and the connection goes back to the pool."""
        self._active = False
        self.idle_since = time.monotonic()

    def close(self) -> None:
        """Close after flushing what is queued (no reuse)."""
        if self._transport is not None:
            self._transport.close()

    def abort(self) -> None:
        """Close at once, dropping what is queued."""
        if self._transport is not None:
            self._transport.abort()

    # ---- helpers ------------------------------------------------------------------------

    def _writable(self) -> asyncio.Transport:
        transport = self._transport
        if self._closed or transport is None or transport.is_closing():
            before = not self._x.received
            raise OriginClosed("the origin connection is closed", before_response=before)
        return transport

    async def _wait(self) -> None:
        if self._error is not None:
            raise self._error
        if self._closed or (self._eof and not self._raw):
            raise OriginClosed("the origin closed the connection")
        waiter = asyncio.get_running_loop().create_future()
        self._waiter = waiter
        try:
            await self._bounded(waiter, "respond")
        finally:
            self._waiter = None

    async def _bounded(self, waiter: asyncio.Future[None], what: str) -> None:
        timeout = self._x.timeout
        if timeout is None or self._raw:
            await waiter
            return
        # A timer that fails the waiter: a third of the cost of `asyncio.timeout`, which
        # cancels and un-cancels the task (this runs once or more per request).
        timer = waiter.get_loop().call_later(timeout, _expire, waiter, what, timeout)
        try:
            await waiter
        finally:
            timer.cancel()

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def _push(self, data: bytes) -> None:
        self._buffer.push(data)
        self._wake()

    def _fail(self, error: OriginError) -> None:
        if self._error is None:
            self._error = error
        self._wake()
        if self._transport is not None:
            self._transport.abort()

    # ---- asyncio.Protocol ---------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # A stream transport (uvloop's do not subclass asyncio.Transport, hence no isinstance).
        self._transport = self._buffer.transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        if self._raw:
            self._push(data)
        elif self._x.stopped:
            return  # after the head of a response to HEAD; the connection is not reused
        elif not self._active or self._x.done:
            self._fail(OriginProtocolError("the origin sent bytes outside of a response"))
        else:
            self._x.received = True
            self._feed(data)

    def _feed(self, data: bytes) -> None:
        x = self._x
        if x.response is None:
            x.head_bytes += len(data)
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserUpgrade as exc:
            self._switch_to_raw(data, exc.args[0])
        except httptools.HttpParserError as exc:
            if not x.stopped:
                self._fail(OriginProtocolError(f"malformed response from the origin: {exc}"))
            return
        if x.response is None and x.head_bytes > self.max_head_size:
            self._fail(OriginProtocolError(f"response head over {self.max_head_size} bytes"))

    def _switch_to_raw(self, data: bytes, offset: int) -> None:
        # on_headers_complete already refused a 101 to anything but an upgrade request.
        self._raw = True
        if offset < len(data):
            self._push(data[offset:])
        self._wake()

    def eof_received(self) -> bool:
        self._ended(None)
        # Keep the transport open for our half of a raw pipe (not possible over TLS).
        return self._raw and not self.address.tls

    def connection_lost(self, exc: Exception | None) -> None:
        self._closed = True
        self._ended(exc)
        drain = self._drain_waiter
        if drain is not None and not drain.done():
            drain.set_result(None)
        if self.on_lost is not None:
            self.on_lost(self)

    def _ended(self, exc: Exception | None) -> None:
        x = self._x
        if self._error is None and not x.stopped:
            if self._raw:
                if exc is not None:
                    self._error = OriginClosed(f"the origin connection was lost: {exc}")
            elif self._active and not x.done:
                self._error = self._unfinished(exc)
                x.done = self._error is None
        self._eof = True
        self._wake()

    def _unfinished(self, exc: Exception | None) -> OriginError | None:
        x = self._x
        if x.response is not None and x.until_eof and exc is None:
            return None  # a close-delimited body ends here
        if not x.received:
            return OriginClosed("the origin closed the connection", before_response=True)
        return OriginProtocolError("the origin closed the connection mid-response")

    def pause_writing(self) -> None:
        self._writing_paused = True

    def resume_writing(self) -> None:
        self._writing_paused = False
        drain = self._drain_waiter
        if drain is not None and not drain.done():
            drain.set_result(None)

    # ---- httptools callbacks (a raise here becomes an HttpParserError in _feed) ----------

    def on_message_begin(self) -> None:
        if self._x.response is not None:
            raise OriginProtocolError("a second response to one request")
        self._x.headers = []

    def on_header(self, name: bytes, value: bytes) -> None:
        x = self._x
        x.header_bytes += len(name) + len(value)
        if x.header_bytes > self.max_head_size:
            raise OriginProtocolError(f"response head over {self.max_head_size} bytes")
        x.headers.append((name.lower(), value))

    def on_headers_complete(self) -> None:
        x = self._x
        status = self._parser.get_status_code()
        x.interim = status < 200 and status != 101
        if x.interim:
            return
        if status == 101 and not x.request.upgrade:
            raise OriginProtocolError("the origin switched protocols unasked")
        headers = tuple(x.headers)
        x.response = OriginResponse(status, headers, self._parser.should_keep_alive())
        x.until_eof = _close_delimited(status, headers)
        self._wake()
        if not x.request.expects_body:
            x.done = x.stopped = True
            raise _StopParsing

    def on_body(self, body: bytes) -> None:
        self._push(body)

    def on_message_complete(self) -> None:
        if not self._x.interim:
            self._x.done = True
            self._wake()


def _expire(waiter: asyncio.Future[None], what: str, timeout: float) -> None:
    if not waiter.done():
        waiter.set_exception(OriginTimeout(f"the origin did not {what} within {timeout:g}s"))


def _close_delimited(status: int, headers: Headers) -> bool:
    """A response whose body runs until the origin closes (no length, not chunked)."""
    if status in (204, 304, 101):
        return False
    return not any(name in (b"content-length", b"transfer-encoding") for name, _ in headers)
