"""Client bytes in, checked requests and body bytes out: llhttp (httptools) plus our limits.

`RequestParser.feed` runs llhttp over what the socket delivered. Every complete head becomes
a `ClientRequest` (`request.parse_head` decides its framing) handed to the sink, which
returns the `RequestBody` its body bytes go to. Anything malformed, ambiguous or too large
raises `Rejected`; after that the parser must not be fed again.

Limits llhttp does not keep:

* the head (request line and fields) and the trailer section are bounded by
  `max_header_bytes`, counted per field as llhttp reports them, and also per socket read:
  httptools buffers a field until its line ends, so an endless line must be cut short by
  the byte count before it ends;
* in a body, a run of bytes that are not body (chunk framing, extensions, trailers) is
  bounded the same way.
"""

from __future__ import annotations

import logging
from typing import Protocol

import httptools

from ingress.public.body import RequestBody
from ingress.public.request import (
    SPECIAL,
    ClientRequest,
    Rejected,
    bad_request,
    is_special,
    parse_head,
)

log = logging.getLogger("kokoa.ingress.public")

# What the parser is in the middle of.
IDLE, HEAD, BODY = 0, 1, 2
_OWS = (b" ", b"\t")


class ParserSink(Protocol):
    def request_parsed(self, request: ClientRequest) -> RequestBody | None:
        """A complete head: return where its body (or raw bytes after an upgrade) go."""
        ...

    def message_complete(self) -> None:
        """The request's body is complete."""
        ...


class RequestParser:
    """One connection's HTTP/1.1 request parser; see the module docstring."""

    def __init__(self, sink: ParserSink, max_header_bytes: int) -> None:
        self._sink = sink
        self._max = max_header_bytes
        self._parser = httptools.HttpRequestParser(self)
        self.phase = IDLE
        self.head_bytes = 0  # bytes received for the head (or non-body bytes in a body)
        self.body: RequestBody | None = None  # the body being parsed
        self._url = b""
        self._headers: list[tuple[bytes, bytes]] = []  # forwarded as they are
        self._special: list[tuple[bytes, bytes]] = []  # interpreted by parse_head
        self._size = 0
        self._body_total = 0  # body bytes parsed so far (for the non-body byte count)

    def feed(self, data: bytes) -> int | None:
        """Parse `data`; the offset where raw bytes start after an upgrade, else None.

        Raises:
            Rejected: the request is malformed, ambiguous or too large.
        """
        if self.phase == IDLE:
            self.phase = HEAD
        if self.phase == HEAD:
            self.head_bytes += len(data)
        before = self._body_total
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserUpgrade as exc:
            return int(exc.args[0])
        except httptools.HttpParserCallbackError as exc:
            raise _callback_problem(exc) from None
        except httptools.HttpParserError as exc:
            raise bad_request(f"malformed request: {exc}") from None
        self._check_sizes(len(data), self._body_total - before)
        return None

    def _check_sizes(self, size: int, delivered: int) -> None:
        if self.phase == BODY:
            self.head_bytes = size - delivered + (0 if delivered else self.head_bytes)
        if self.phase != IDLE and self.head_bytes > self._max:
            raise too_large()

    # ---- httptools callbacks (what they raise comes back as HttpParserCallbackError) ----

    def on_message_begin(self) -> None:
        self.phase = HEAD
        self._url = b""
        self._headers = []
        self._special = []
        self._size = 0

    def on_url(self, url: bytes) -> None:
        self._url += url
        self._size += len(url)
        if self._size > self._max:
            raise too_large()

    def on_header(self, name: bytes, value: bytes) -> None:
        size = self._size = self._size + len(name) + len(value) + 4
        if size > self._max:
            raise too_large()
        if self.phase != HEAD:
            return  # a trailer field: not carried by the tunnel (docs/protocol.md §5.2)
        if value.endswith(_OWS):  # llhttp strips leading whitespace only
            value = value.rstrip(b" \t")
        name = name.lower()
        if name in SPECIAL:
            self._special.append((name, value))
        else:
            if b"_" in name:
                is_special(name)  # raises for an underscore alias of a special field
            self._headers.append((name, value))

    def on_headers_complete(self) -> None:
        parser = self._parser
        request = parse_head(
            parser.get_method(),
            parser.get_http_version(),
            self._url,
            self._headers,
            self._special,
            keep_alive=parser.should_keep_alive(),
            upgrade=parser.should_upgrade(),
        )
        self.phase = BODY
        self.head_bytes = self._size = 0
        self.body = self._sink.request_parsed(request)

    def on_body(self, body: bytes) -> None:
        self._body_total += len(body)
        if self.body is not None:
            self.body.push(body)

    def on_message_complete(self) -> None:
        self.phase = IDLE
        self.head_bytes = 0
        body = self.body
        if body is None or self._parser.should_upgrade():
            return  # (the body of an upgrade is the raw pipe that follows)
        body.finish()
        self.body = None
        self._sink.message_complete()


def too_large() -> Rejected:
    return Rejected(
        431, "header_too_large", "the request header fields are too large", "header_too_large"
    )


def _callback_problem(exc: httptools.HttpParserCallbackError) -> Rejected:
    cause = exc.__context__
    if isinstance(cause, Rejected):
        return cause
    log.error("request parser callback failed", exc_info=cause or exc)
    return bad_request("the request could not be parsed")
