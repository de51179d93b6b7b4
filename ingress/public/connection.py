"""One client connection: HTTP/1.1 parsed by llhttp (httptools), requests served in order.

An asyncio `Protocol` (as uvicorn's `httptools_impl`), so both directions have flow control
without extra copies or tasks per read:

* client → tunnel: body bytes go into the request's `RequestBody`, which pauses reading the
  socket above its high-water mark until the exchange has written them to the tunnel;
* tunnel → client: `drain` waits while the transport's write buffer is above its high-water
  mark (`pause_writing`/`resume_writing`), so a slow client slows the agent.

Requests are served one at a time. A pipelined request parsed while another is in flight is
queued and reading pauses until its turn, so a connection buffers at most one socket read
ahead. A malformed request is answered 400 (431, 408, …) and the connection closed, after
the responses to the requests before it.

Timeouts are deadlines checked by the server's sweeper (`expire`), not timers per request:
a head must be complete `header_timeout` after its first byte (or after the connection was
accepted), an idle kept-alive connection closes after `keepalive_timeout`, and the request
in flight gets its response head within `response_head_timeout` of the end of its request
(or of the last body bytes the agent took; see `exchange.py`).
"""

from __future__ import annotations

import asyncio
import math
from collections import deque
from typing import TYPE_CHECKING, cast

from ingress.public.body import ClientGone, RequestBody
from ingress.public.exchange import NOTHING, PARTIAL, Exchange
from ingress.public.parser import HEAD, IDLE, RequestParser
from ingress.public.request import ClientRequest, Rejected

if TYPE_CHECKING:
    from ingress.public.server import Listener

# Why reading is paused (a bit each; reading resumes when none is left).
_BODY_FULL, _QUEUED, _REFUSING = 1, 2, 4
_LINGER = 2.0  # seconds to read and drop an unwanted request body before closing


class HttpConnection(asyncio.Protocol):
    """The HTTP/1.1 server side of one client connection; see the module docstring."""

    def __init__(self, listener: Listener) -> None:
        # Made by the loop (create_server's factory); asking asyncio for it per request costs
        # a getpid() system call each time on Python 3.11.
        self._loop = asyncio.get_running_loop()
        self.listener = listener
        self.limits = listener.server.limits()
        self.transport: asyncio.Transport | None = None
        self.client = ("", 0)
        self._parser = RequestParser(self, self.limits.max_header_bytes)
        self._deadline = math.inf
        self._raw: RequestBody | None = None  # after an upgrade: where raw bytes go
        self._active: Exchange | None = None
        self._task: asyncio.Task[None] | None = None
        self._queue: deque[Exchange] = deque()
        self._refused: Rejected | None = None  # to answer once the requests before it are
        self._paused = 0
        self._write_paused = False
        self._drain_waiter: asyncio.Future[None] | None = None
        self._dead = False  # the parser hit an error: ignore what follows
        self._lingering = False  # dropping the rest of a body nobody wants
        self._linger_keep_alive = False
        self.closed = False

    # ---- asyncio.Protocol ---------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # A stream transport (uvloop's are not asyncio.Transport subclasses: no isinstance).
        self.transport = cast(asyncio.Transport, transport)
        peer = transport.get_extra_info("peername")
        if isinstance(peer, tuple):
            address = str(peer[0])
            if address.startswith("::ffff:") and "." in address:
                address = address[7:]  # an IPv4 client of a dual-stack socket
            self.client = (address, int(peer[1]))
        self._deadline = self._now() + self.limits.header_timeout
        self.listener.server.opened(self)

    def data_received(self, data: bytes) -> None:
        if self._raw is not None:
            self._raw.push(data)
            return
        if self._dead:
            return
        parser = self._parser
        if parser.phase == IDLE and self._active is None:  # the first byte of a head
            self._deadline = self._now() + self.limits.header_timeout
        try:
            offset = parser.feed(data)
        except Rejected as rejected:
            self.refuse(rejected)
            return
        if offset is not None:  # upgraded: the rest is for the raw pipe
            self._raw, parser.body = parser.body, None
            if self._raw is not None and offset < len(data):
                self._raw.push(data[offset:])

    def eof_received(self) -> bool:
        if self._raw is not None:
            self._raw.finish()  # the client half-closed its side of the pipe
            return not self.listener.tls  # keep writing to it (TCP only)
        if self._parser.body is not None:
            self._parser.body.fail(ClientGone("the client closed the connection mid-body"))
        active = self._active
        if active is not None and not self._queue and active.request_complete:
            active.keep_alive = False
            return not self.listener.tls  # the response can still be sent
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        gone = ClientGone(f"the client connection was lost ({exc or 'closed'})")
        for body in (self._parser.body, self._raw):
            if body is not None:
                body.fail(gone)
        self._queue.clear()
        if self._task is not None and not self._task.done():
            self._task.cancel()
        self._wake_drain()
        self.listener.server.closed(self)

    def pause_writing(self) -> None:
        self._write_paused = True

    def resume_writing(self) -> None:
        self._write_paused = False
        self._wake_drain()

    # ---- ParserSink -------------------------------------------------------------------

    def request_parsed(self, request: ClientRequest) -> RequestBody | None:
        body = None
        if request.has_body or request.upgrade is not None:
            body = RequestBody(self)
        self._dispatch(Exchange(self, request, body))
        return body

    def message_complete(self) -> None:
        if self._lingering:  # the rest of an unwanted body has been read and dropped
            self._lingering = False
            self._after_response(self._linger_keep_alive)

    # ---- requests in order --------------------------------------------------------------

    def _dispatch(self, exchange: Exchange) -> None:
        if self._active is None:
            self._start(exchange)
        else:
            self._queue.append(exchange)
            self._pause(_QUEUED)

    def _start(self, exchange: Exchange) -> None:
        self._active = exchange
        self._deadline = math.inf
        self._task = self.listener.server.spawn(exchange.run(), exchange.request_id)

    def finished(self, exchange: Exchange, keep_alive: bool) -> None:
        """The exchange is over (`keep_alive`: its response let the connection stay open);
        serve the next request, or close."""
        if exchange is not self._active:
            return
        self._active = self._task = None
        if self.closed:
            return
        if exchange.responded == PARTIAL:
            self.abort()  # the response was cut short: the client must see it fail
            return
        body = exchange.body
        if self._refused is not None and exchange.responded == NOTHING:
            self._answer(self._refused, exchange)
        elif self._raw is not None or (body is not None and body.failed):
            self._close()
        elif body is not None and not body.done:
            self._linger(body, keep_alive)
        else:
            self._after_response(keep_alive)

    def _after_response(self, keep_alive: bool) -> None:
        if not keep_alive or self.listener.server.draining:
            self._close()
        elif self._queue:
            self._start(self._queue.popleft())
            if not self._queue:
                self._resume(_QUEUED)
        elif self._refused is not None:
            self._answer(self._refused, None)
        else:
            limits = self.limits
            timeout = limits.header_timeout if self._parser.phase else limits.keepalive_timeout
            self._deadline = self._now() + timeout

    def _linger(self, body: RequestBody, keep_alive: bool) -> None:
        """Read and drop the rest of a body nobody wants, for a short while: closing with
        unread data would reset the connection and could destroy the response in flight."""
        body.discard()
        self._lingering = True
        self._linger_keep_alive = keep_alive
        self._deadline = self._now() + _LINGER
        self._resume(_BODY_FULL)

    def refuse(self, rejected: Rejected) -> None:
        """Answer a malformed request (after the responses before it), then close."""
        if self._lingering:  # a response said `connection: close` already
            self._close()
            return
        self._dead = True  # nothing after a framing error can be trusted
        self._raw = None
        body, self._parser.body = self._parser.body, None
        if body is not None:
            body.fail(ClientGone(rejected.message))
        active = self._active
        if active is None:
            self._answer(rejected, None)
            return
        if body is not None and active.body is body and self._task is not None:
            # The request in flight is the malformed one: stop it.
            active.status, active.error = rejected.status, rejected.message
            self._task.cancel()
            if not active.running:  # cancelled before its first step: nothing will answer
                self._active = self._task = None
                self._answer(rejected, None)
                return
        self._refused = self._refused or rejected
        self._pause(_REFUSING)

    def _answer(self, rejected: Rejected, exchange: Exchange | None) -> None:
        """Send the error page for `rejected` and close. With `exchange`, the page answers
        that request, which has its own access log line."""
        server = self.listener.server
        if exchange is None:
            server.rejected(self, rejected, None)
        else:
            exchange.status = rejected.status
            server.rejected(self, rejected, exchange.request_id, exchange.request.accept)
        self._close_after_answer()

    def _close_after_answer(self) -> None:
        """End our side after the page, but read (and drop) what the client still sends for
        a moment: closing with unread bytes would reset the connection, and the client
        could lose the page."""
        transport = self.transport
        if transport is None or self.closed:
            return
        if not self.listener.tls and transport.can_write_eof():
            transport.write_eof()
        self._dead = True
        self._deadline = self._now() + _LINGER
        if self._paused:
            self._paused = 0
            transport.resume_reading()

    def expire(self, now: float) -> None:
        """Called by the sweeper: enforce the head, keep-alive, linger and response-head
        deadlines."""
        if now < self._deadline or self.closed:
            return
        active = self._active
        if active is not None:  # no response head from the agent in time
            self._deadline = math.inf
            if self._task is not None:
                active.timed_out = True
                self._task.cancel()
            return
        if self._parser.phase == HEAD and self._parser.head_bytes and not self._dead:
            self.refuse(_timed_out())
        else:
            self._close()

    def shutdown(self) -> None:
        """The server is draining: close now if idle, else after the response in flight."""
        parser = self._parser
        if self._active is None and (parser.phase != HEAD or not parser.head_bytes):
            self._close()

    # ---- the exchange's side ------------------------------------------------------------

    def await_response(self, timeout: float) -> None:
        """The exchange waits for the agent's response head: cancel it after `timeout`
        seconds (setting its `timed_out`), unless `response_started` comes first. Called
        again (the upload moved), the deadline starts again from now."""
        self._deadline = self._now() + timeout

    def response_started(self) -> None:
        self._deadline = math.inf

    def write(self, data: bytes) -> None:
        if not self.closed and self.transport is not None:
            self.transport.write(data)

    def writelines(self, parts: tuple[bytes, ...] | list[bytes]) -> None:
        if not self.closed and self.transport is not None:
            self.transport.writelines(parts)

    @property
    def write_paused(self) -> bool:
        return self._write_paused

    async def drain(self) -> None:
        """Wait until the client has taken enough of what was written.

        Raises:
            ClientGone: the connection is closed.
        """
        while self._write_paused and not self.closed:
            waiter = self._loop.create_future()
            self._drain_waiter = waiter
            try:
                await waiter
            finally:
                self._drain_waiter = None
        if self.closed:
            raise ClientGone("the client connection was lost")

    def end_pipe(self) -> None:
        """The tunnel side of a pipe ended: half-close toward the client, or close."""
        transport = self.transport
        if transport is None or self.closed:
            return
        if not self.listener.tls and transport.can_write_eof():
            transport.write_eof()
        else:
            transport.close()

    def _close(self) -> None:
        if self.transport is not None and not self.closed:
            self.transport.close()

    def abort(self) -> None:
        if self.transport is not None and not self.closed:
            self.transport.abort()

    # ---- ReadControl (for RequestBody) and helpers ---------------------------------------

    def pause_reading(self) -> None:
        self._pause(_BODY_FULL)

    def resume_reading(self) -> None:
        self._resume(_BODY_FULL)

    def _pause(self, reason: int) -> None:
        if not self._paused and self.transport is not None and not self.closed:
            self.transport.pause_reading()
        self._paused |= reason

    def _resume(self, reason: int) -> None:
        if not self._paused & reason:
            return
        self._paused &= ~reason
        if not self._paused and self.transport is not None and not self.closed:
            self.transport.resume_reading()

    def _wake_drain(self) -> None:
        waiter = self._drain_waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def _now(self) -> float:
        return self._loop.time()


def _timed_out() -> Rejected:
    return Rejected(408, "header_timeout", "the request head took too long", "header_timeout")
