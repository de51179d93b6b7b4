"""Error pages the ingress answers itself: HTML for browsers, JSON for API clients (pure).

`Accept` decides: JSON when the client ranks `application/json` (or `*/json`, or a `+json`
type) above `text/html`, HTML otherwise. Both carry a stable `error` code, a sentence for
people and the request id, never internal details (those go to the server log).
"""

from __future__ import annotations

import html
import json
from dataclasses import dataclass

from common.wire import ErrorCode
from ingress.public.response import STATUS_LINES


@dataclass(frozen=True, slots=True)
class Problem:
    """An error answered to the client: status, machine-readable code, human sentence."""

    status: int
    error: str
    message: str


def for_reset(code: int, service: str) -> Problem:
    """The page for a tunnel stream the agent reset with `code` before answering."""
    if code == ErrorCode.ORIGIN_TIMEOUT:
        return Problem(504, "origin_timeout", f"the origin of {service} did not answer in time")
    if code == ErrorCode.ORIGIN_REFUSED:
        return Problem(502, "origin_refused", f"the origin of {service} could not be reached")
    if code == ErrorCode.ORIGIN_ERROR:
        return Problem(502, "origin_error", f"the origin of {service} sent an invalid response")
    if code == ErrorCode.BUSY:
        return Problem(503, "busy", f"every agent of {service} is busy; try again shortly")
    if code == ErrorCode.UNKNOWN_SERVICE:
        return Problem(502, "unknown_service", f"the agent does not serve {service}")
    if code == ErrorCode.HEAD_TOO_LARGE:
        return Problem(431, "header_too_large", "the request header fields are too large")
    if code == ErrorCode.DRAINING:
        return Problem(502, "draining", f"the agents of {service} are restarting; try again")
    return Problem(502, "bad_gateway", f"the tunnel to {service} failed")


def no_agent(service: str) -> Problem:
    return Problem(502, "no_agent", f"no agent is connected for service {service}")


def agents_busy(service: str) -> Problem:
    return Problem(503, "busy", f"every agent of {service} is busy; try again shortly")


def unknown_host(host: str) -> Problem:
    return Problem(404, "unknown_host", f"no service is published at {host}")


def render(problem: Problem, request_id: str, accept: bytes, *, keep_alive: bool) -> bytes:
    """The whole response (head and body) for `problem`."""
    if prefers_json(accept):
        body = json.dumps(
            {"error": problem.error, "message": problem.message, "request_id": request_id}
        ).encode()
        content_type = b"application/json"
    else:
        body = _html(problem, request_id).encode()
        content_type = b"text/html; charset=utf-8"
    return b"".join(
        (
            STATUS_LINES[problem.status],
            b"content-type: ",
            content_type,
            b"\r\ncontent-length: %d\r\n" % len(body),
            b"cache-control: no-store\r\nx-request-id: ",
            request_id.encode(),
            b"\r\n" if keep_alive else b"\r\nconnection: close\r\n",
            b"\r\n",
            body,
        )
    )


def redirect(location: bytes, request_id: str, *, keep_alive: bool) -> bytes:
    """A `308 Permanent Redirect` to `location` (method and body are kept by the client)."""
    return b"".join(
        (
            STATUS_LINES[308],
            b"location: ",
            location,
            b"\r\ncontent-length: 0\r\nx-request-id: ",
            request_id.encode(),
            b"\r\n" if keep_alive else b"\r\nconnection: close\r\n",
            b"\r\n",
        )
    )


def _html(problem: Problem, request_id: str) -> str:
    title = f"{problem.status} {STATUS_LINES[problem.status][13:-2].decode()}"
    return (
        "<!doctype html>\n<html lang=en><head><meta charset=utf-8>"
        f"<title>{html.escape(title)}</title></head>\n<body><h1>{html.escape(title)}</h1>\n"
        f"<p>{html.escape(problem.message)}.</p>\n"
        f"<p><small>request id {html.escape(request_id)}</small></p></body></html>\n"
    )


def prefers_json(accept: bytes) -> bool:
    """Whether an Accept header ranks a JSON type above HTML."""
    if b"json" not in accept:
        return False
    json_q = html_q = 0.0
    for item in accept.split(b","):
        media, _, params = item.partition(b";")
        media = media.strip().lower()
        q = _quality(params)
        if media == b"application/json" or media == b"*/json" or media.endswith(b"+json"):
            json_q = max(json_q, q)
        elif media in (b"text/html", b"text/*", b"*/*"):
            html_q = max(html_q, q if media == b"text/html" else q * 0.99)
    return json_q > html_q


def _quality(params: bytes) -> float:
    for param in params.split(b";"):
        key, _, value = param.partition(b"=")
        if key.strip().lower() == b"q":
            try:
                return min(max(float(value), 0.0), 1.0)
            except ValueError:
                return 0.0
    return 1.0
