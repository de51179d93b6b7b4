"""Translation between tunnel heads and HTTP/1.1 towards the origin (pure, no I/O).

Towards the origin we frame the request ourselves: `Host` (the service's override, else the
public authority), the tunnel head's headers (already free of hop-by-hop fields), our own
`x-request-id`, then `content-length` when the length is known, `transfer-encoding: chunked`
when it is not, and `connection: upgrade` + `upgrade` for an upgrade. Nothing the client sent
about framing is copied as-is.

Back towards the tunnel, the origin's response loses its hop-by-hop fields (and those its
`Connection` names) and its framing: a known length becomes one
normalised `content-length`, an unknown one `:chunked` (docs/protocol.md §5.2). `upgrade` is
kept on a 101 and on a 426 (Upgrade Required), as §5.1 allows.
"""

from __future__ import annotations

from common.wire import HOP_BY_HOP, RequestHead, ResponseHead, encode_response
from common.wire.fields import content_length
from edge.origin_config import OriginService
from edge.origin_errors import OriginProtocolError
from edge.origin_messages import OriginRequest, OriginResponse

_NOT_FORWARDED = frozenset((b"host", b"content-length", b"x-request-id", b"expect", b"upgrade"))
_CRLF = b"\r\n"


def origin_request(head: RequestHead, service: OriginService) -> OriginRequest:
    """Serialize the request head to send to the service's origin."""
    host = service.host_header or head.authority or service.address.authority
    parts = [f"{head.method} {head.target} HTTP/1.1\r\nhost: {host}\r\n".encode()]
    upgrade: list[bytes] = []
    for name, value in head.headers:
        if name in _NOT_FORWARDED:
            if name == b"upgrade":
                upgrade.append(value)
            continue
        parts += (name, b": ", value, _CRLF)
    parts += (b"x-request-id: ", head.request_id.encode(), _CRLF)
    length = head.content_length()
    if head.chunked:
        parts.append(b"transfer-encoding: chunked\r\n")
    elif length is not None:
        parts.append(b"content-length: %d\r\n" % length)
    if upgrade:
        parts += (b"connection: upgrade\r\nupgrade: ", b", ".join(upgrade), _CRLF)
    parts.append(_CRLF)
    return OriginRequest(b"".join(parts), head.method, length, head.chunked, bool(upgrade))


def tunnel_response(response: OriginResponse, *, method: str) -> ResponseHead:
    """The RESPONSE head for the origin's response to a `method` request.

    Raises:
        OriginProtocolError: an invalid or conflicting `content-length`.
    """
    status = response.status
    headers = _end_to_end(response.headers, keep_upgrade=status in (101, 426))
    if status == 101:
        return ResponseHead(status, headers)
    length = _length(response.headers)
    if method == "HEAD" or status in (204, 304):
        if length is not None and status != 204:
            headers += ((b"content-length", b"%d" % length),)  # informational: no body follows
        return ResponseHead(status, headers)
    if length is None:
        return ResponseHead(status, headers, chunked=True)
    return ResponseHead(status, (*headers, (b"content-length", b"%d" % length)))


def encode_tunnel_response(head: ResponseHead, max_size: int) -> bytes:
    """Preface and RESPONSE frame for `head`.

    Raises:
        OriginProtocolError: the origin's head cannot cross the tunnel (too large, bad field).
    """
    try:
        return encode_response(head, max_size=max_size)
    except ValueError as exc:
        raise OriginProtocolError(f"response head not representable on the tunnel: {exc}") from None


_DROPPED = HOP_BY_HOP | {b"content-length", b"upgrade"}
_DROPPED_BUT_UPGRADE = _DROPPED - {b"upgrade"}


def _end_to_end(
    headers: tuple[tuple[bytes, bytes], ...], *, keep_upgrade: bool
) -> tuple[tuple[bytes, bytes], ...]:
    drop = _DROPPED_BUT_UPGRADE if keep_upgrade else _DROPPED
    for name, value in headers:
        if name == b"connection":  # it may name more fields to drop (RFC 9110 §7.6.1)
            named = {token.strip().lower() for token in value.split(b",")}
            named.discard(b"upgrade")  # kept or dropped by `keep_upgrade` alone
            drop = drop | named
    return tuple([field for field in headers if field[0] not in drop])


def _length(headers: tuple[tuple[bytes, bytes], ...]) -> int | None:
    if any(name == b"transfer-encoding" for name, _ in headers):
        return None
    try:
        return content_length(headers)
    except ValueError as exc:
        raise OriginProtocolError(f"origin sent {exc}") from None
