"""A client's request head, checked for every framing ambiguity (pure: no I/O).

llhttp (httptools), with every leniency off, already refuses most smuggling vectors: a
Content-Length with a Transfer-Encoding, duplicate or non-digit Content-Length, a
Transfer-Encoding whose last coding is not `chunked`, obs-fold, bare CR or LF, whitespace
before the colon, control characters in names and values, bad chunk sizes and extensions.
`parse_head` adds what llhttp lets through (threats.md T1, RFC 9112 §6.1, §6.3, §11.2):

- Transfer-Encoding must be exactly one field whose value is `chunked` (any case): llhttp
  accepts `gzip, chunked` and repeated fields, but we could not undo another coding;
- no Transfer-Encoding at all in HTTP/1.0;
- exactly one Host (or an absolute-form target), a valid authority;
- only HTTP/1.0 and HTTP/1.1 (llhttp also parses 0.9 and 2.0 request lines);
- CONNECT is refused; an upgrade request may not carry a body;
- no underscore spelling of a field we interpret (`content_length`, `x_forwarded_for`):
  CGI-style servers read `_` as `-`, so it would be a second, unchecked copy.

Each refusal is a `Rejected` with the status to answer; the connection is then closed.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass

Header = tuple[bytes, bytes]

# Fields the front end interprets or replaces; every other field is forwarded as it came.
_HOP_BY_HOP = frozenset(
    (b"connection", b"keep-alive", b"proxy-connection", b"te", b"trailer", b"transfer-encoding")
)
_REPLACED = frozenset(
    (
        *(b"host", b"content-length", b"upgrade", b"expect", b"x-request-id"),
        *(b"forwarded", b"x-real-ip", b"x-forwarded-for", b"x-forwarded-proto"),
        *(b"x-forwarded-host", b"x-forwarded-port"),
    )
)
SPECIAL = _HOP_BY_HOP | _REPLACED
_CONNECTION_OPTIONS = frozenset((b"close", b"keep-alive", b"upgrade"))
_MAX_CONTENT_LENGTH = 10**19 - 1  # the tunnel carries at most 19 digits
# host [":" port]: a bracketed IPv6 literal, or a DNS name / IPv4 address (letters, digits,
# '-', '_' and dots: stricter than RFC 3986's reg-name, which no real host name needs).
_AUTHORITY = re.compile(rb"(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9._-]+)(?::([0-9]{0,5}))?")


class Rejected(Exception):
    """A request we refuse to forward; answer `status` and close the connection.

    `error` is the machine-readable code of the error page, `reason` the label of
    `kokoa_ingress_rejected_total`, `message` a sentence for the client.
    """

    def __init__(self, status: int, error: str, message: str, reason: str = "bad_request") -> None:
        super().__init__(message)
        self.status = status
        self.error = error
        self.message = message
        self.reason = reason


def bad_request(message: str) -> Rejected:
    return Rejected(400, "bad_request", message)


@dataclass(slots=True)
class ClientRequest:
    """What the client asked, with framing decided and hop-by-hop fields gone.

    `headers` keeps every other field in order with lowercase names; `authority` is the Host
    (or the absolute-form target's authority) as sent, `host` its normalised name for routing.
    """

    method: str
    target: str
    http10: bool
    keep_alive: bool
    authority: str
    host: str
    headers: list[Header]
    content_length: int | None = None
    chunked: bool = False
    upgrade: bytes | None = None
    expect_continue: bool = False

    @property
    def has_body(self) -> bool:
        return self.chunked or bool(self.content_length)

    @property
    def accept(self) -> bytes:
        """The Accept field (for our own error pages: not on the hot path)."""
        for name, value in self.headers:
            if name == b"accept":
                return value
        return b""


@dataclass(slots=True)
class _Fields:
    """The interpreted fields collected in one pass over the head."""

    hosts: int = 0
    host: bytes = b""
    content_length: bytes | None = None
    transfer_encodings: int = 0
    transfer_encoding: bytes = b""
    connection: bytes = b""
    upgrade: bytes | None = None
    expect: bytes | None = None


def parse_head(
    method: bytes,
    version: str,
    url: bytes,
    headers: list[Header],
    special: list[Header],
    *,
    keep_alive: bool,
    upgrade: bool,
) -> ClientRequest:
    """Check a complete request head from llhttp and decide its framing.

    The head's fields come split in two (`split_field` decides, field by field, as the
    parser reports them): `headers`, forwarded as they are, and `special`, the fields this
    module interprets or replaces. Names are lowercase, values without surrounding
    whitespace; `keep_alive` and `upgrade` are llhttp's `should_keep_alive()` and
    `should_upgrade()`.

    Raises:
        Rejected: anything ambiguous, unsupported or malformed.
    """
    if version not in ("1.1", "1.0"):
        raise Rejected(
            505,
            "version_not_supported",
            "only HTTP/1.1 and HTTP/1.0 are served",
            "version_not_supported",
        )
    if method == b"CONNECT":
        raise Rejected(
            405, "method_not_allowed", "CONNECT is not supported here", "method_not_allowed"
        )
    fields = _collect(special)
    request = _request(method, version, url, headers, fields, keep_alive)
    _frame(request, fields)
    if upgrade:
        if request.has_body or request.chunked:
            raise bad_request("an upgrade request cannot carry a body")
        request.upgrade = fields.upgrade
    if fields.connection:
        _drop_nominated(request, fields.connection)
    return request


def is_special(name: bytes) -> bool:
    """Whether a (lowercase) field is interpreted here rather than forwarded as it is.

    Raises:
        Rejected: an underscore spelling of such a field (`content_length`): CGI-style
            servers read `_` as `-`, so it would be a second, unchecked copy.
    """
    if name in SPECIAL:
        return True
    if b"_" in name and name.replace(b"_", b"-") in SPECIAL:
        raise bad_request(f"ambiguous header name {name.decode()!r}")
    return False


def split_fields(raw: list[Header]) -> tuple[list[Header], list[Header]]:
    """`raw` split into (forwarded, special) fields, as the connection does field by field."""
    headers: list[Header] = []
    special: list[Header] = []
    for field in raw:
        (special if is_special(field[0]) else headers).append(field)
    return headers, special


def _collect(special: list[Header]) -> _Fields:
    fields = _Fields()
    for name, value in special:
        if name == b"host":
            fields.hosts += 1
            fields.host = value
        elif name == b"content-length":
            fields.content_length = value  # llhttp refuses a second one
        elif name == b"transfer-encoding":
            fields.transfer_encodings += 1
            fields.transfer_encoding = value
        elif name == b"connection":
            fields.connection += b"," + value
        elif name == b"upgrade":
            fields.upgrade = value if fields.upgrade is None else fields.upgrade + b", " + value
        elif name == b"expect":
            fields.expect = value
    return fields


def _request(
    method: bytes,
    version: str,
    url: bytes,
    headers: list[Header],
    fields: _Fields,
    keep_alive: bool,
) -> ClientRequest:
    target, raw_authority = _target(method, url, fields)
    authority, host = normalise_host(raw_authority)
    return ClientRequest(
        method.decode("ascii"),
        target,
        version == "1.0",
        keep_alive,
        authority,
        host,
        headers,
    )


def _target(method: bytes, url: bytes, fields: _Fields) -> tuple[str, bytes]:
    """The origin-form target and the authority, from the request line and Host."""
    if fields.hosts > 1:
        raise bad_request("more than one Host header")
    if url[:1] == b"/":
        if not fields.hosts:
            raise bad_request("the Host header is missing")
        return _text(url, "target"), fields.host
    if url == b"*":
        if method != b"OPTIONS":
            raise bad_request("the asterisk target is only for OPTIONS")
        if not fields.hosts:
            raise bad_request("the Host header is missing")
        return "*", fields.host
    return _absolute(url)


def _absolute(url: bytes) -> tuple[str, bytes]:
    """An absolute-form target: its authority wins over Host (RFC 9112 §3.2.2)."""
    scheme, sep, rest = url.partition(b"://")
    if not sep or scheme.lower() not in (b"http", b"https"):
        raise bad_request("the request target must be a path or an http(s) URL")
    end = len(rest)
    for delimiter in (b"/", b"?", b"#"):
        found = rest.find(delimiter)
        if found != -1 and found < end:
            end = found
    authority, tail = rest[:end], rest[end:]
    if b"@" in authority:
        raise bad_request("user information is not allowed in the request target")
    if tail[:1] != b"/":
        tail = b"/" + tail
    return _text(tail, "target"), authority


def _text(value: bytes, what: str) -> str:
    try:
        return value.decode("utf-8")
    except UnicodeDecodeError:
        raise bad_request(f"the {what} is not valid UTF-8") from None


@functools.lru_cache(maxsize=4096)  # a pure function of a value that repeats a lot
def normalise_host(authority: bytes) -> tuple[str, str]:
    """The authority as ASCII (IDNA A-labels for an international name) and its host for
    routing: lowercase, without port or trailing dot.

    Raises:
        Rejected: not a valid `host[:port]`.
    """
    if not authority.isascii():
        authority = _idna(authority)
    match = _AUTHORITY.fullmatch(authority)
    if match is None:
        raise bad_request("the Host header is not a valid host name")
    port = match.group(2)
    if port and int(port) > 65535:
        raise bad_request("the Host header has an invalid port")
    host = match.group(1).lower()
    if host.endswith(b".") and len(host) > 1:
        host = host[:-1]
    return authority.decode("ascii"), host.decode("ascii")


def _idna(authority: bytes) -> bytes:
    try:
        text = authority.decode("utf-8")
        host, sep, port = text.rpartition(":") if text.count(":") == 1 else (text, "", "")
        return host.encode("idna") + sep.encode() + port.encode("ascii")
    except (UnicodeError, ValueError):
        raise bad_request("the Host header is not a valid international host name") from None


def _frame(request: ClientRequest, fields: _Fields) -> None:
    if fields.transfer_encodings:
        if request.http10:
            raise bad_request("Transfer-Encoding is not allowed in HTTP/1.0")
        if fields.transfer_encodings > 1 or fields.transfer_encoding.lower() != b"chunked":
            raise bad_request("Transfer-Encoding must be exactly 'chunked'")
        request.chunked = True
    elif fields.content_length is not None:
        length = int(fields.content_length)  # llhttp checked: digits only, no overflow
        if length > _MAX_CONTENT_LENGTH:
            raise Rejected(413, "content_too_large", "the request body is too large")
        request.content_length = length
    if fields.expect is not None:
        if fields.expect.lower() != b"100-continue":
            raise Rejected(
                417,
                "expectation_failed",
                "only 'Expect: 100-continue' is supported",
                "expectation_failed",
            )
        request.expect_continue = request.has_body and not request.http10


def _drop_nominated(request: ClientRequest, connection: bytes) -> None:
    """Remove the fields the client's Connection header names (RFC 9110 §7.6.1)."""
    names = {token.strip().lower() for token in connection.split(b",")}
    names -= _CONNECTION_OPTIONS
    names.discard(b"")
    if names:
        request.headers = [h for h in request.headers if h[0] not in names]
