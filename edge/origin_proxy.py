"""Serving one tunnel stream end to end: request head in, the origin's answer out.

The ingress opens a stream per request (docs/protocol.md §5). `OriginProxy.serve`:

1. reads the preface and REQUEST head (bounded by `max_head_size`);
2. resolves `:service` in the agent's own configuration only — an unknown name (or a `:kind`
   the service does not take) resets the stream with `UNKNOWN_SERVICE`, nothing is dialled;
3. HTTP: sends the request to the service's origin on a pooled connection and, at the same
   time, pumps the request body tunnel → origin (re-framed) while the response goes
   origin → tunnel, each direction awaiting the other side's flow control; a 101 turns both
   directions into a raw pipe. A request without a body (or upgrade) first checks that its
   FIN follows the head, and needs no second task. The service's `read_timeout` for the
   response head starts once the request (head and body) has been handed to the origin;
   while the body is still being uploaded, an early answer is taken as it comes, and only a
   read timeout without a body byte from the tunnel ends the wait (`_response`).
   TCP: connects, answers `:status 200`, pipes raw bytes.
4. maps every failure to a stream reset with our code (never raises, except cancellation):
   `ProtocolError` → its code, `OriginRefused` → `ORIGIN_REFUSED`, `OriginTimeout` →
   `ORIGIN_TIMEOUT`, other `OriginError` → `ORIGIN_ERROR`, anything else → `INTERNAL_ERROR`.
   A reset from the ingress (the client went away) closes the origin connection.

Each stream ends with one `kokoa.edge.access` log line carrying the ingress's request id, and,
when `counters` are given (control mode), is counted for its service (edge/counters.py).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass

from common.streams import read_head
from common.transport import ConnectionClosed, StreamReset, TransportError, TunnelStream
from common.wire import (
    MAX_HEAD_SIZE,
    ErrorCode,
    HeadReader,
    ProtocolError,
    RequestHead,
    ResponseHead,
)
from edge.counters import Counters, ServiceStats
from edge.origin import OriginConnection, OriginPool
from edge.origin_config import OriginService
from edge.origin_errors import OriginClosed, OriginError, OriginRefused, OriginTimeout
from edge.origin_http import encode_tunnel_response, origin_request, tunnel_response
from edge.origin_messages import OriginRequest, OriginResponse
from edge.origin_pumps import READ_SIZE, Traffic, discard, pipe_up, pump_down, upload

log = logging.getLogger("kokoa.edge.origin_proxy")
access_log = logging.getLogger("kokoa.edge.access")


class UnknownService(Exception):
    """The stream names a service this agent does not serve (or not with this `:kind`)."""


@dataclass(slots=True)
class _Access(Traffic):
    """What the access log line says about one stream."""

    started: float = 0.0
    request_id: str = "-"
    service: str = "-"
    method: str = "-"
    target: str = "-"
    status: int = 0
    error: str | None = None
    failed: bool = False  # counted as an error (not: the ingress reset it, its client left)
    counted: ServiceStats | None = None

    def describe(self, head: RequestHead) -> None:
        self.request_id, self.service = head.request_id, head.service
        self.method = head.method if head.kind == "http" else "TCP"
        self.target = head.target if head.kind == "http" else "-"


@dataclass(slots=True)
class _Exchange:
    """One HTTP request on its way to the origin; `conn` changes if the request is retried.

    `upgraded` (upgrade requests only) tells the upload side whether the origin switched;
    `sent` (requests with a body only) is set by the upload side once the body has ended.
    """

    conn: OriginConnection
    service: OriginService
    request: OriginRequest
    upgraded: asyncio.Future[bool] | None = None
    sent: asyncio.Future[None] | None = None


class OriginProxy:
    """Serves tunnel streams for the services `services()` returns (read at each stream)."""

    def __init__(
        self,
        pool: OriginPool,
        services: Callable[[], Mapping[str, OriginService]],
        *,
        agent: str,
        max_head_size: int = MAX_HEAD_SIZE,
        counters: Counters | None = None,
    ) -> None:
        self._pool = pool
        self._services = services
        self._agent = agent
        self._max_head_size = max_head_size
        self.counters = counters

    async def serve(self, stream: TunnelStream) -> None:
        """Handle one tunnel stream end to end; failures become stream resets, never raises.

        Raises:
            asyncio.CancelledError: when cancelled (the stream is reset with INTERNAL_ERROR).
        """
        access = _Access(started=time.monotonic())
        try:
            await self._serve(stream, access)
        except asyncio.CancelledError:
            access.error = "cancelled"
            access.failed = True
            _reset(stream, ErrorCode.INTERNAL_ERROR)
            raise
        except Exception as exc:  # every failure is mapped to a reset code here
            self._fail(stream, exc, access)
        finally:
            if access.counted is not None:
                Counters.end(
                    access.counted,
                    status=access.status,
                    failed=access.failed,
                    bytes_in=access.bytes_in,
                    bytes_out=access.bytes_out,
                )
            if access_log.isEnabledFor(logging.INFO):
                self._log(access)

    async def _serve(self, stream: TunnelStream, access: _Access) -> None:
        head, leftover = await read_head(stream, HeadReader.request(self._max_head_size))
        assert isinstance(head, RequestHead)  # a request reader yields request heads
        access.describe(head)
        service = self._services().get(head.service)
        if service is None or service.kind != head.kind:
            raise UnknownService(f"no {head.kind} service {head.service!r} on this agent")
        if self.counters is not None:
            access.counted = self.counters.begin(service.name)
        if head.kind == "tcp":
            await self._tcp(stream, service, leftover, access)
        else:
            await self._http(stream, head, service, leftover, access)

    # ---- HTTP ---------------------------------------------------------------------------

    async def _http(
        self,
        stream: TunnelStream,
        head: RequestHead,
        service: OriginService,
        leftover: bytes,
        access: _Access,
    ) -> None:
        request = origin_request(head, service)
        if request.has_body or request.upgrade:
            await self._http_both_ways(stream, head.request_id, service, request, leftover, access)
            return
        # Nothing to upload (the usual GET): the FIN follows the head (docs/protocol.md §5.2),
        # so it is checked here, without the task and task group an upload needs.
        if leftover or await stream.read(READ_SIZE):
            raise ProtocolError(ErrorCode.PROTOCOL_ERROR, "body bytes after a bodiless request")
        ex = _Exchange(await self._pool.acquire(service), service, request)
        try:
            await self._downstream(stream, ex, await self._start(ex), access)
        finally:
            self._pool.release(ex.conn)

    async def _http_both_ways(
        self,
        stream: TunnelStream,
        request_id: str,
        service: OriginService,
        request: OriginRequest,
        leftover: bytes,
        access: _Access,
    ) -> None:
        """A request with a body (or an upgrade): upload and response side by side."""
        ex = _Exchange(await self._pool.acquire(service), service, request)
        loop = asyncio.get_running_loop()
        if request.upgrade:
            ex.upgraded = loop.create_future()
        else:
            ex.sent = loop.create_future()
        try:
            async with asyncio.TaskGroup() as tg:
                tg.create_task(
                    self._upstream(stream, ex, leftover, access), name=f"upload {request_id}"
                )
                if ex.sent is None:  # an upgrade: no body before the answer
                    response = await self._start(ex)
                else:
                    self._begin(ex)
                    response = await self._response(ex, tg, access, request_id)
                await self._downstream(stream, ex, response, access)
        finally:
            self._pool.release(ex.conn)

    async def _response(
        self, ex: _Exchange, tg: asyncio.TaskGroup, traffic: Traffic, request_id: str
    ) -> OriginResponse:
        """The response head to a request with a body.

        Its read timeout starts once the whole body has been handed to the origin. Until then
        an early answer (a 413, say) is taken as it comes, and the wait lasts as long as the
        body moves: only a read timeout in which not one body byte came from the tunnel ends
        it (an origin that stops reading is caught by `drain`'s own read timeout).
        """
        sent = ex.sent
        assert sent is not None  # the caller checked
        # Let the upload take its first step: a body that came with the head (the usual
        # small POST) is then all sent, and needs no second task (~40 µs on uvloop).
        await asyncio.sleep(0)
        if sent.done():
            return await ex.conn.response()  # the read timeout starts now
        early = tg.create_task(self._early_response(ex, traffic), name=f"head {request_id}")
        try:
            await asyncio.wait((early, sent), return_when=asyncio.FIRST_COMPLETED)
        finally:
            if not early.done():  # the body has ended (or we are cancelled)
                early.cancel()
                # Let it unwind first: it holds the connection's waiter.
                await asyncio.wait((early,))
        if early.cancelled():
            return await ex.conn.response()  # the read timeout starts now
        result = early.result()
        if isinstance(result, OriginError):
            raise result
        return result

    async def _early_response(
        self, ex: _Exchange, traffic: Traffic
    ) -> OriginResponse | OriginError:
        """The response head while the body is still being uploaded; a failure is returned
        (not raised: the task group would take it for a second one)."""
        conn, timeout = ex.conn, ex.service.read_timeout
        while True:
            moved = traffic.bytes_in
            try:
                return await conn.response()
            except OriginTimeout:
                if traffic.bytes_in == moved:
                    return OriginTimeout(f"the request body did not move for {timeout:g}s")
            except OriginError as exc:
                return exc

    async def _start(self, ex: _Exchange) -> OriginResponse:
        """Send the request head and wait for the response head, retrying once on a fresh
        connection if a kept-alive one turns out to have been closed by the origin."""
        try:
            self._begin(ex)
            return await ex.conn.response()
        except OriginClosed as exc:
            if not exc.before_response or ex.conn.requests < 2 or ex.request.has_body:
                raise
        log.debug("kept-alive origin connection was closed; retrying on a new one")
        self._pool.release(ex.conn)
        ex.conn = await self._pool.connect(ex.service)
        self._begin(ex)
        return await ex.conn.response()

    def _begin(self, ex: _Exchange) -> None:
        ex.conn.begin(ex.request, read_timeout=ex.service.read_timeout)

    async def _downstream(
        self, stream: TunnelStream, ex: _Exchange, response: OriginResponse, access: _Access
    ) -> None:
        upgraded = response.status == 101  # the connection only accepts one when asked
        if ex.upgraded is not None:
            ex.upgraded.set_result(upgraded)
        head = tunnel_response(response, method=ex.request.method)
        await stream.write(encode_tunnel_response(head, self._max_head_size))
        access.status = head.status
        await pump_down(ex.conn, stream, access)
        if not upgraded and not ex.conn.request_sent:
            ex.conn.close()  # answered before the whole body: stop forwarding it

    async def _upstream(
        self, stream: TunnelStream, ex: _Exchange, leftover: bytes, access: _Access
    ) -> None:
        first = leftover or await stream.read(READ_SIZE)
        if ex.upgraded is not None:
            if await ex.upgraded:
                await pipe_up(stream, ex.conn, first, access)
            else:
                await discard(stream, first)
        elif ex.request.has_body:
            await upload(stream, ex.conn, ex.request.length, first, access)
            assert ex.sent is not None  # set for every request with a body
            ex.sent.set_result(None)
        elif first:
            raise ProtocolError(ErrorCode.PROTOCOL_ERROR, "body bytes after a bodiless request")

    # ---- TCP ----------------------------------------------------------------------------

    async def _tcp(
        self, stream: TunnelStream, service: OriginService, leftover: bytes, access: _Access
    ) -> None:
        conn = await self._pool.connect(service, raw=True)
        try:
            await stream.write(encode_tunnel_response(ResponseHead(200), self._max_head_size))
            access.status = 200
            async with asyncio.TaskGroup() as tg:
                tg.create_task(pipe_up(stream, conn, leftover or None, access), name="tcp up")
                await pump_down(conn, stream, access)
        finally:
            self._pool.release(conn)

    # ---- failures and the access log ----------------------------------------------------

    def _fail(self, stream: TunnelStream, exc: Exception, access: _Access) -> None:
        leaf = _pick(exc)
        code = _code_for(leaf)
        if code is None:  # the ingress reset the stream, or the connection is gone
            access.error = f"{type(leaf).__name__}: {leaf}"
            access.failed = not isinstance(leaf, StreamReset)  # a reset: its client went away
            if isinstance(leaf, StreamReset):
                _reset(stream, ErrorCode.CANCELLED)  # abort our other direction too
            return
        access.error = code.name
        access.failed = True
        if code == ErrorCode.INTERNAL_ERROR:
            log.error("request %s failed", access.request_id, exc_info=leaf)
        else:
            log.warning("request %s: %s: %s", access.request_id, code.name, leaf)
        _reset(stream, code)

    def _log(self, access: _Access) -> None:
        duration_ms = round((time.monotonic() - access.started) * 1000, 3)
        access_log.info(
            "request",
            extra={
                "request_id": access.request_id,
                "service": access.service,
                "method": access.method,
                "target": access.target,
                "status": access.status,
                "bytes_in": access.bytes_in,
                "bytes_out": access.bytes_out,
                "duration_ms": duration_ms,
                "agent": self._agent,
                "error": access.error,
            },
        )


# ---- error mapping ----------------------------------------------------------------------

_PRIORITY: tuple[tuple[type[BaseException], ...], ...] = (
    (StreamReset, ConnectionClosed),
    (ProtocolError, UnknownService),
    (OriginError,),
)


def _leaves(exc: BaseException) -> Iterator[BaseException]:
    if isinstance(exc, BaseExceptionGroup):
        for inner in exc.exceptions:
            yield from _leaves(inner)
    else:
        yield exc


def _pick(exc: BaseException) -> BaseException:
    """The failure that explains the others (a task group may hold several)."""
    leaves = list(_leaves(exc))
    for kinds in _PRIORITY:
        for leaf in leaves:
            if isinstance(leaf, kinds):
                return leaf
    return leaves[0]


def _code_for(exc: BaseException) -> ErrorCode | None:
    """The reset code for a failure; None when the stream is already gone."""
    if isinstance(exc, TransportError):
        return None
    if isinstance(exc, ProtocolError):
        return exc.code
    if isinstance(exc, UnknownService):
        return ErrorCode.UNKNOWN_SERVICE
    if isinstance(exc, OriginTimeout):
        return ErrorCode.ORIGIN_TIMEOUT
    if isinstance(exc, OriginRefused):
        return ErrorCode.ORIGIN_REFUSED
    if isinstance(exc, OriginError):
        return ErrorCode.ORIGIN_ERROR
    return ErrorCode.INTERNAL_ERROR


def _reset(stream: TunnelStream, code: ErrorCode) -> None:
    try:
        stream.reset(code)
    except TransportError:
        pass  # the connection is already gone
