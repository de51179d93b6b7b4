"""The tunnel REQUEST head for a client's request (pure: no I/O).

We are the edge: what the client claims about forwarding is dropped, not appended to
(`forwarded`, `x-real-ip` and every `x-forwarded-*` were removed by `request.parse_head`),
and ours is set: `x-forwarded-for` (the client's address), `x-forwarded-proto`,
`x-forwarded-host` (the Host as sent), and `x-request-id` (our id, also `:request-id`).
"""

from __future__ import annotations

import os

from common.wire import RequestHead
from ingress.public.request import ClientRequest
from ingress.routing import Route

_IDS_PER_DRAW = 256  # ids drawn per os.urandom() call: a system call per request cost ~2 µs
_ids: list[str] = []


def new_request_id() -> str:
    """A fresh random request id: 32 hex digits (128 bits from os.urandom)."""
    if not _ids:
        digits = os.urandom(16 * _IDS_PER_DRAW).hex()
        _ids.extend(digits[i : i + 32] for i in range(0, len(digits), 32))
    return _ids.pop()


def tunnel_head(
    request: ClientRequest,
    route: Route,
    *,
    request_id: str,
    client: tuple[str, int],
    scheme: str,
) -> RequestHead:
    """The head to send to an agent of `route.service` for `request`."""
    headers = [
        *request.headers,
        (b"x-forwarded-for", client[0].encode()),
        (b"x-forwarded-proto", scheme.encode()),
        (b"x-forwarded-host", request.authority.encode()),
        (b"x-request-id", request_id.encode()),
    ]
    if request.content_length is not None:
        headers.append((b"content-length", b"%d" % request.content_length))
    if request.upgrade is not None:
        headers.append((b"upgrade", request.upgrade))
    target = request.target
    if route.strip_prefix and target != "*":
        target = route.target_for(target)
    return RequestHead(
        service=route.service,
        request_id=request_id,
        client=client[0],
        method=request.method,
        target=target,
        scheme=scheme,
        authority=request.authority,
        client_port=client[1],
        chunked=request.chunked,
        headers=tuple(headers),
    )


def route_path(target: str) -> str:
    """The path of a target, for routing: without the query; `*` routes as `/`."""
    if target == "*":
        return "/"
    query = target.find("?")
    return target if query == -1 else target[:query]
