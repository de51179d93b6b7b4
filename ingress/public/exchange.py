"""One request through the tunnel: route, lease a stream, send, answer, log (the hot path).

`Exchange.run` is the task the connection starts for each request, in order:

1. route by Host and path (404 when no service has the host); on a redirecting listener,
   answer 308 to HTTPS instead;
2. lease a stream to an agent of the service (502 when none is connected, 503 when all are
   busy) and write the REQUEST head; a body that arrived with the head goes in the same write;
3. stream the rest of the body (`relay.upload`, its own task) while waiting for the RESPONSE
   head; a stream refused with BUSY or DRAINING before it carried a body is tried again on
   another lease. The wait is bounded by `response_head_timeout` (a deadline the
   connection's sweeper enforces), counted from the end of the request: from the last
   write of the body (the FIN), or from the head when there is no body to stream. While the
   body is still being streamed, each write the agent takes starts the deadline again, so
   only an upload that stops moving for that long ends it: 408 when the client stopped
   sending, else 504 (the agent stopped taking the body, or never answered). An answer
   that comes before the body ends is served as it comes;
4. frame the response for the client and pump it (`relay`), each side awaiting the other's
   flow control; a 101 turns both directions into a raw pipe.

Failures before the response head are error pages (`pages.py`); after it, the connection is
aborted so the client sees a truncated response. The client going away cancels the task,
which resets the stream with CANCELLED. Each request ends with one `kokoa.ingress.access`
line and its metrics.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import TYPE_CHECKING

from common.streams import read_head
from common.transport import StreamReset, TransportError, TunnelStream
from common.wire import (
    ErrorCode,
    HeadReader,
    HeadTooLargeError,
    ProtocolError,
    ResponseHead,
    encode_request,
)
from ingress.agents import AgentsBusy, NoAgentAvailable
from ingress.metrics import ServiceMetrics
from ingress.public import pages, relay
from ingress.public.body import RequestBody
from ingress.public.forward import new_request_id, route_path, tunnel_head
from ingress.public.gateway import TunnelLease
from ingress.public.pages import Problem
from ingress.public.request import ClientRequest
from ingress.public.response import Framing, encode_head, upgrade_head
from ingress.routing import Route

if TYPE_CHECKING:
    from ingress.public.connection import HttpConnection

log = logging.getLogger("kokoa.ingress.public")
access_log = logging.getLogger("kokoa.ingress.access")

_ATTEMPTS = 3  # leases per request when agents refuse a stream with BUSY or DRAINING
_BODY_TIMEOUT = Problem(408, "body_timeout", "the request body stopped arriving")
_RETRY = frozenset((ErrorCode.BUSY, ErrorCode.DRAINING))
# How far the response got (`Exchange.responded`).
NOTHING, PARTIAL, COMPLETE = 0, 1, 2


class Exchange:
    """One request and its response; see the module docstring."""

    __slots__ = (
        "_awaiting",
        "_upload_task",
        "agent",
        "body",
        "conn",
        "error",
        "keep_alive",
        "request",
        "request_id",
        "responded",
        "running",
        "sent",
        "service",
        "started",
        "status",
        "stream_failed",
        "timed_out",
    )

    def __init__(self, conn: HttpConnection, request: ClientRequest, body: RequestBody | None):
        self.conn = conn
        self.request = request
        self.body = body  # None: no body (and no upgrade)
        self.request_id = new_request_id()
        self.service = "-"
        self.agent = "-"
        self.status = 0
        self.sent = 0  # response body bytes written to the client
        self.started = time.monotonic()
        self.error: str | None = None
        self.stream_failed = False  # the tunnel stream failed (counted as an error)
        self.keep_alive = request.keep_alive
        self.responded = NOTHING
        self.running = False  # run() has started
        self.timed_out = False  # the connection cancelled us: no response head in time
        self._awaiting = False  # waiting for the response head (the deadline is ours)
        self._upload_task: asyncio.Task[None] | None = None

    @property
    def request_complete(self) -> bool:
        """The client has sent the whole request (head and body)."""
        return self.body is None or self.body.done

    async def run(self) -> None:
        """Serve the request; never raises but cancellation (the client went away)."""
        self.running = True
        try:
            route = self._route()
            if route is not None:
                await self._proxy(route)
        except asyncio.CancelledError:
            self.error = self.error or "client went away"
            raise
        except Exception as exc:  # a bug: log it, never show it
            log.error("request %s failed", self.request_id, exc_info=exc)
            self.error = f"internal error: {exc!r}"
            self._fail(Problem(500, "internal_error", "the ingress failed to handle the request"))
        finally:
            if self._upload_task is not None:
                self._upload_task.cancel()
            if access_log.isEnabledFor(logging.INFO):
                self._log()
            self.conn.finished(self, self.keep_alive)

    def _route(self) -> Route | None:
        """The route, or None once answered (redirect to HTTPS, unknown host)."""
        listener = self.conn.listener
        if listener.redirect_port is not None:
            self._redirect(listener.redirect_port)
            return None
        request = self.request
        route = listener.server.gateway.route(request.host, route_path(request.target))
        if route is None:
            listener.server.metrics.reject("unknown_host")
            self._problem(pages.unknown_host(request.host))
            return None
        self.service = route.service
        return route

    # ---- through the tunnel -------------------------------------------------------------

    async def _proxy(self, route: Route) -> None:
        payload = self._payload(route)
        if payload is None:
            return
        server = self.conn.listener.server
        metrics = server.metrics.service(route.service)
        metrics.active += 1
        try:
            for attempt in range(_ATTEMPTS):
                lease = await self._lease(route.service)
                if lease is None:
                    return
                async with lease:
                    self.agent = lease.agent
                    retry = attempt + 1 < _ATTEMPTS and not self.request.has_body
                    if not await self._through(lease.stream, payload, metrics, retry=retry):
                        return
        finally:
            metrics.active -= 1
            received = 0 if self.body is None else self.body.received
            seconds = time.monotonic() - self.started
            failed = self.stream_failed
            metrics.count(self.status or 499, seconds, received, self.sent, failed=failed)

    def _payload(self, route: Route) -> bytes | None:
        """The encoded REQUEST head, or None once answered (431, 400)."""
        conn = self.conn
        head = tunnel_head(
            self.request,
            route,
            request_id=self.request_id,
            client=conn.client,
            scheme=conn.listener.scheme,
        )
        try:
            # Every part was checked by the parser (llhttp and request.parse_head) or is ours:
            # the grammar check would only repeat that (check=False: sizes only).
            return encode_request(head, max_size=conn.limits.max_head_size, check=False)
        except HeadTooLargeError:
            self._problem(Problem(431, "header_too_large", "the request head is too large"))
        except ValueError as exc:
            log.info("request %s not representable: %s", self.request_id, exc)
            self._problem(Problem(400, "bad_request", "the request is malformed"))
        return None

    async def _lease(self, service: str) -> TunnelLease | None:
        """A stream to an agent of `service`, or None once answered (502, 503)."""
        try:
            return await self.conn.listener.server.gateway.lease(service)
        except AgentsBusy:
            self._problem(pages.agents_busy(service))
        except NoAgentAvailable:
            self._problem(pages.no_agent(service))
        return None

    async def _through(
        self, stream: TunnelStream, payload: bytes, metrics: ServiceMetrics, *, retry: bool
    ) -> bool:
        """Send the request on `stream` and answer the client; True to try another lease."""
        try:
            await self._exchange(stream, payload)
        except (TransportError, ProtocolError) as exc:
            return self._failed(stream, exc, metrics, retry=retry)
        except asyncio.CancelledError:
            if self.timed_out and _uncancel() == 0:  # the response-head deadline passed
                return self._failed(stream, TimeoutError(), metrics, retry=False)
            relay.reset(stream, ErrorCode.CANCELLED)
            metrics.reset(ErrorCode.CANCELLED)
            raise
        except BaseException:  # a bug
            relay.reset(stream, ErrorCode.CANCELLED)
            metrics.reset(ErrorCode.CANCELLED)
            raise
        finally:
            self._stop_upload(stream)
        return False

    def _failed(
        self, stream: TunnelStream, exc: Exception, metrics: ServiceMetrics, *, retry: bool
    ) -> bool:
        """Map a tunnel failure to an answer; True when another lease may be tried."""
        service = self.service
        if isinstance(exc, StreamReset):  # the agent reset the stream
            metrics.reset(exc.code)
            self.error = f"stream reset by the agent: {_code_name(exc.code)}"
            if retry and exc.code in _RETRY and self.responded == NOTHING:
                return True
            if exc.code == ErrorCode.ORIGIN_TIMEOUT and self._client_stalled():
                self._fail(_BODY_TIMEOUT)  # the agent waited for body bytes that never came
            else:
                self._fail(pages.for_reset(exc.code, service))
        elif isinstance(exc, ProtocolError):  # the agent sent something malformed
            relay.reset(stream, exc.code)
            metrics.reset(exc.code)
            self.error = f"{exc.code.name}: {exc.message}"
            self._fail(Problem(502, "bad_gateway", f"the agent of {service} answered badly"))
        elif isinstance(exc, TimeoutError):
            relay.reset(stream, ErrorCode.CANCELLED)
            metrics.reset(ErrorCode.CANCELLED)
            if self._client_stalled():
                self.error = "the request body stopped arriving"
                self._fail(_BODY_TIMEOUT)
            else:
                self.error = "no response head in time"
                self._fail(Problem(504, "agent_timeout", f"no answer from {service} in time"))
        else:  # the connection to the agent is gone
            self.error = f"tunnel connection lost: {exc}"
            self._fail(
                Problem(502, "agent_lost", f"the connection to the agent of {service} was lost")
            )
        self.stream_failed = True
        return False

    def _client_stalled(self) -> bool:
        """The body is still being uploaded, and the upload waits for the client."""
        task, body = self._upload_task, self.body
        return task is not None and not task.done() and body is not None and body.starved

    def _stop_upload(self, stream: TunnelStream) -> None:
        """The exchange is over: a body still being uploaded is not wanted any more."""
        task = self._upload_task
        if task is not None and not task.done():
            task.cancel()
            relay.reset(stream, ErrorCode.CANCELLED)

    async def _exchange(self, stream: TunnelStream, payload: bytes) -> None:
        body = self.body
        upgrade = self.request.upgrade is not None
        if body is None:
            await stream.write(payload)
            await stream.write_eof()
        elif upgrade:
            await stream.write(payload)  # the raw pipe waits for the 101
        elif body.done:
            await stream.write(payload + body.take_all())
            await stream.write_eof()
        else:
            await stream.write(payload)
            self._start_upload(stream, body)
        conn, limits = self.conn, self.conn.limits
        # A deadline, not a timer (cheaper); an upload in progress keeps moving it.
        conn.await_response(limits.response_head_timeout)
        self._awaiting = True
        try:
            head, leftover = await read_head(stream, HeadReader.response(limits.max_head_size))
        finally:
            self._awaiting = False
            conn.response_started()
        assert isinstance(head, ResponseHead)  # a response reader yields response heads
        if upgrade:
            if head.status == 101:
                await self._pipe(stream, head, leftover, body)
                return
            await stream.write_eof()  # refused: the request had no body after all
            self.keep_alive = False
        elif head.status < 200:  # agents drop interim responses; a 101 needs an upgrade
            raise ProtocolError(ErrorCode.PROTOCOL_ERROR, f"{head.status} in answer to a request")
        await self._respond(stream, head, leftover)

    def _start_upload(self, stream: TunnelStream, body: RequestBody) -> None:
        expect_continue = self.request.expect_continue
        upload = relay.upload(
            self.conn, stream, body, expect_continue=expect_continue, progress=self._uploaded
        )
        self._upload_task = self.conn.listener.server.spawn(upload, f"upload {self.request_id}")

    def _uploaded(self) -> None:
        """The agent took more of the body (or its end): the response-head deadline starts
        again from now."""
        if self._awaiting:
            self.conn.await_response(self.conn.limits.response_head_timeout)

    # ---- toward the client --------------------------------------------------------------

    async def _respond(self, stream: TunnelStream, head: ResponseHead, leftover: bytes) -> None:
        request = self.request
        data, framing, size, keep_alive = encode_head(
            head,
            self.request_id.encode(),
            head_request=request.method == "HEAD",
            http10=request.http10,
            keep_alive=self._can_keep_alive(),
        )
        self.keep_alive = keep_alive
        self.status = head.status
        self.responded = PARTIAL
        conn = self.conn
        if framing is Framing.LENGTH:
            await relay.sized(conn, stream, data, leftover, size, self)
        elif framing is Framing.CHUNKED:
            await relay.chunked(conn, stream, data, leftover, self)
        elif framing is Framing.CLOSE:
            conn.write(data)
            await relay.until_fin(conn, stream, leftover, self)
        else:
            conn.write(data)
            await relay.expect_fin(stream, leftover)
        self.responded = COMPLETE

    async def _pipe(
        self, stream: TunnelStream, head: ResponseHead, data: bytes, body: RequestBody | None
    ) -> None:
        """After a 101: raw bytes both ways until both sides finished."""
        conn = self.conn
        self.keep_alive = False
        self.status = 101
        self.responded = PARTIAL
        conn.write(upgrade_head(head, self.request_id.encode()))
        if body is not None:
            self._start_upload(stream, body)
        await relay.until_fin(conn, stream, data, self)
        conn.end_pipe()
        if self._upload_task is not None:
            await self._upload_task
        self.responded = COMPLETE

    # ---- answers of our own -------------------------------------------------------------

    def _problem(self, problem: Problem) -> None:
        """Answer with an error page (nothing was sent yet)."""
        self.status = problem.status
        self.keep_alive = keep_alive = self._can_keep_alive()
        page = pages.render(problem, self.request_id, self.request.accept, keep_alive=keep_alive)
        self.conn.write(page)
        self.responded = COMPLETE

    def _fail(self, problem: Problem) -> None:
        """An error page if nothing was sent yet; else cut the response short."""
        if self.responded == NOTHING:
            self._problem(problem)
        else:
            self.keep_alive = False
            self.conn.abort()

    def _redirect(self, port: int) -> None:
        request = self.request
        authority = request.host if port == 443 else f"{request.host}:{port}"
        target = "/" if request.target == "*" else request.target
        self.conn.listener.server.metrics.reject("redirected")
        self.status = 308
        self.keep_alive = keep_alive = self._can_keep_alive()
        location = f"https://{authority}{target}".encode()
        self.conn.write(pages.redirect(location, self.request_id, keep_alive=keep_alive))
        self.responded = COMPLETE

    def _can_keep_alive(self) -> bool:
        """Whether the response may promise to keep the connection open: the client wants
        it, its whole request was read, and the server is not draining."""
        server = self.conn.listener.server
        return self.keep_alive and self.request_complete and not server.draining

    def _log(self) -> None:
        request = self.request
        access_log.info(
            "request",
            extra={
                "request_id": self.request_id,
                "service": self.service,
                "agent": self.agent,
                "method": request.method,
                "target": request.target,
                "host": request.authority,
                "status": self.status or 499,
                "bytes_in": 0 if self.body is None else self.body.received,
                "bytes_out": self.sent,
                "duration_ms": round((time.monotonic() - self.started) * 1000, 3),
                "client": self.conn.client[0],
                "node": self.conn.listener.server.node,
                "error": self.error,
            },
        )


def _uncancel() -> int:
    """Withdraw one cancellation request from the current task; how many are left."""
    task = asyncio.current_task()
    return 0 if task is None else task.uncancel()


def _code_name(code: int) -> str:
    try:
        return ErrorCode(code).name
    except ValueError:
        return f"{code:#x}"
