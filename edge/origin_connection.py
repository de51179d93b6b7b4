"""One connection to an origin: HTTP/1.1 exchanges parsed by httptools, or a raw byte pipe.

An asyncio `Protocol`, so both directions have real flow control without extra copies:

* origin → agent: body bytes queue here until the proxy `read`s them; above `HIGH_WATER`
  buffered bytes the transport stops reading the socket, below `LOW_WATER` it resumes. A slow
  tunnel therefore slows the origin through TCP, and memory stays bounded.
* agent → origin: `drain` waits while the transport's write buffer is above its high-water
  mark (`pause_writing`/`resume_writing`).

Responses are parsed by llhttp (httptools); we never look at HTTP bytes ourselves. A request
starts with `begin` (one at a time, never pipelined); interim 1xx responses other than 101 are
skipped; a 101 switches the connection to raw mode, where bytes pass through unparsed.
`read_timeout` bounds every wait for the origin (first response byte, each body read, each
drain) in HTTP mode; raw pipes (upgrades, TCP) may idle indefinitely.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import cast

import httptools

from edge.origin_config import OriginAddress
from edge.origin_errors import OriginClosed, OriginError, OriginProtocolError, OriginTimeout

HIGH_WATER = 256 * 1024
LOW_WATER = 64 * 1024
READ_SIZE = 256 * 1024

Headers = tuple[tuple[bytes, bytes], ...]


@dataclass(frozen=True, slots=True)
class OriginResponse:
    """The head of the origin's final response (header names lowercased, order kept)."""

    status: int
    headers: Headers
    keep_alive: bool


class _StopParsing(Exception):
    """Raised from a parser callback: the head of a response to HEAD is all there is."""


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
        self._raw = raw
        self._chunks: deque[bytes] = deque()
        self._buffered = 0
        self._reading_paused = False
        self._writing_paused = False
        self._waiter: asyncio.Future[None] | None = None
        self._drain_waiter: asyncio.Future[None] | None = None
        self._error: OriginError | None = None
        self._eof = False
        self._closed = False
        self._begin_exchange(None, chunked=False, has_body=False, upgrade=False, head=False)

    def _begin_exchange(
        self, timeout: float | None, *, chunked: bool, has_body: bool, upgrade: bool, head: bool
    ) -> None:
        self._timeout = timeout
        self._active = timeout is not None
        self._chunked_body = chunked
        self._request_sent = not has_body
        self._upgrade_requested = upgrade
        self._head_request = head
        self._headers: list[tuple[bytes, bytes]] = []
        self._header_bytes = 0
        self._response: OriginResponse | None = None
        self._interim = False
        self._head_bytes = 0
        self._received = False
        self._done = False
        self._until_eof = False
        self._stopped = False

    # ---- the proxy's side ---------------------------------------------------------------

    def begin(
        self,
        request_head: bytes,
        *,
        read_timeout: float,
        has_body: bool,
        chunked: bool = False,
        upgrade: bool = False,
        head: bool = False,
    ) -> None:
        """Send a request head and get ready for its response.

        Raises:
            OriginClosed: the connection is gone.
        """
        if self._active or self._raw:
            raise RuntimeError("an exchange is already in progress on this connection")
        self._begin_exchange(
            read_timeout, chunked=chunked, has_body=has_body, upgrade=upgrade, head=head
        )
        self.requests += 1
        self.write(request_head)

    def send_body(self, data: bytes) -> None:
        """Send request body bytes, chunk-framed when the body length is unknown."""
        if self._chunked_body:
            self.writelines((b"%x\r\n" % len(data), data, b"\r\n"))
        else:
            self.write(data)

    def end_body(self) -> None:
        """The request body is complete (writes the last chunk when chunk-framed)."""
        if self._chunked_body:
            self.write(b"0\r\n\r\n")
        self._request_sent = True

    async def response(self) -> OriginResponse:
        """Wait for the final response head (1xx other than 101 skipped).

        Raises:
            OriginTimeout, OriginClosed, OriginProtocolError.
        """
        while self._response is None:
            await self._wait()
        return self._response

    async def read(self, max_bytes: int = READ_SIZE) -> bytes:
        """Next response body bytes (raw mode: next bytes), or b"" at the end.

        Raises:
            OriginTimeout, OriginClosed, OriginProtocolError: before the end was reached.
        """
        while not self._chunks:
            if self._done and not self._raw:
                return b""  # the message is complete, whatever happens to the socket later
            if self._raw and self._eof:
                if self._error is not None:
                    raise self._error
                return b""
            await self._wait()
        return self._take(max_bytes)

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
    def reusable(self) -> bool:
        """The exchange ended cleanly and the origin keeps the connection alive."""
        response = self._response
        return (
            self._active
            and self._done
            and self._request_sent
            and response is not None
            and response.keep_alive
            and not (
                self._raw
                or self._upgrade_requested
                or self._stopped
                or self._eof
                or self._closed
                or self._chunks
            )
            and self._error is None
        )

    @property
    def request_sent(self) -> bool:
        """The whole request (head and body) has been handed to the transport."""
        return self._request_sent

    @property
    def idle_alive(self) -> bool:
        """An idle (pooled) connection that the origin has not closed."""
        return not (self._active or self._raw or self._eof or self._closed)

    def finish(self) -> None:
        """The exchange is over and the connection goes back to the pool."""
        self._active = False
        self._timeout = None
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
            raise OriginClosed(
                "the origin connection is closed", before_response=not self._received
            )
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

    async def _bounded(self, waiter: Awaitable[None], what: str) -> None:
        if self._timeout is None or self._raw:
            await waiter
            return
        try:
            async with asyncio.timeout(self._timeout):
                await waiter
        except TimeoutError:
            raise OriginTimeout(f"the origin did not {what} within {self._timeout:g}s") from None

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def _push(self, data: bytes) -> None:
        self._chunks.append(data)
        self._buffered += len(data)
        if self._buffered > HIGH_WATER and not self._reading_paused:
            self._reading_paused = True
            if self._transport is not None:
                self._transport.pause_reading()
        self._wake()

    def _take(self, max_bytes: int) -> bytes:
        chunks = self._chunks
        first = chunks.popleft()
        if chunks and len(first) + len(chunks[0]) <= max_bytes:
            parts = [first]
            size = len(first)
            while chunks and size + len(chunks[0]) <= max_bytes:
                size += len(chunks[0])
                parts.append(chunks.popleft())
            first = b"".join(parts)
        self._buffered -= len(first)
        if self._reading_paused and self._buffered <= LOW_WATER:
            self._reading_paused = False
            if self._transport is not None and not self._closed:
                self._transport.resume_reading()
        return first

    def _fail(self, error: OriginError) -> None:
        if self._error is None:
            self._error = error
        self._wake()
        if self._transport is not None:
            self._transport.abort()

    # ---- asyncio.Protocol ---------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # A stream transport (uvloop's do not subclass asyncio.Transport, hence no isinstance).
        self._transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        if self._raw:
            self._push(data)
        elif self._stopped:
            return  # after the head of a response to HEAD; the connection is not reused
        elif not self._active or self._done:
            self._fail(OriginProtocolError("the origin sent bytes outside of a response"))
        else:
            self._received = True
            self._feed(data)

    def _feed(self, data: bytes) -> None:
        if self._response is None:
            self._head_bytes += len(data)
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserUpgrade as exc:
            self._switch_to_raw(data, exc.args[0])
        except httptools.HttpParserError as exc:
            if not self._stopped:
                self._fail(OriginProtocolError(f"malformed response from the origin: {exc}"))
            return
        if self._response is None and self._head_bytes > self.max_head_size:
            self._fail(OriginProtocolError(f"response head over {self.max_head_size} bytes"))

    def _switch_to_raw(self, data: bytes, offset: int) -> None:
        response = self._response
        if response is None or response.status != 101 or not self._upgrade_requested:
            self._fail(OriginProtocolError("the origin switched protocols unasked"))
            return
        self._raw = True
        if offset < len(data):
            self._push(data[offset:])
        self._wake()

    def eof_received(self) -> bool:
        self._eof = True
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
        if self._error is None and not self._stopped:
            if self._raw:
                if exc is not None:
                    self._error = OriginClosed(f"the origin connection was lost: {exc}")
            elif self._active and not self._done:
                self._error = self._unfinished(exc)
                self._done = self._error is None
        self._eof = True
        self._wake()

    def _unfinished(self, exc: Exception | None) -> OriginError | None:
        if self._response is not None and self._until_eof and exc is None:
            return None  # a close-delimited body ends here
        if not self._received:
            return OriginClosed("the origin closed the connection", before_response=True)
        return OriginProtocolError("the origin closed the connection mid-response")

    def pause_writing(self) -> None:
        self._writing_paused = True

    def resume_writing(self) -> None:
        self._writing_paused = False
        drain = self._drain_waiter
        if drain is not None and not drain.done():
            drain.set_result(None)

    # ---- httptools callbacks ------------------------------------------------------------

    def on_message_begin(self) -> None:
        if self._response is not None:
            raise OriginProtocolError("a second response to one request")
        self._headers = []

    def on_header(self, name: bytes, value: bytes) -> None:
        self._header_bytes += len(name) + len(value) + 4
        if self._header_bytes > self.max_head_size:
            raise OriginProtocolError(f"response head over {self.max_head_size} bytes")
        self._headers.append((name.lower(), value))

    def on_headers_complete(self) -> None:
        status = self._parser.get_status_code()
        self._interim = status < 200 and status != 101
        if self._interim:
            return
        if status == 101 and not self._upgrade_requested:
            raise OriginProtocolError("the origin switched protocols unasked")
        headers = tuple(self._headers)
        self._response = OriginResponse(status, headers, self._parser.should_keep_alive())
        self._until_eof = _close_delimited(status, headers)
        self._wake()
        if self._head_request:
            self._done = self._stopped = True
            raise _StopParsing

    def on_body(self, body: bytes) -> None:
        self._push(body)

    def on_message_complete(self) -> None:
        if not self._interim:
            self._done = True
            self._wake()


def _close_delimited(status: int, headers: Headers) -> bool:
    """A response whose body runs until the origin closes (no length, not chunked)."""
    if status in (204, 304, 101):
        return False
    return not any(name in (b"content-length", b"transfer-encoding") for name, _ in headers)
