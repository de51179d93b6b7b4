"""Limits and timeouts of the public HTTP/1.1 front end (swapped whole on a reload)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class HttpLimits:
    """What one client connection may cost us.

    Attributes:
        max_header_bytes: the request line and header fields (also trailers) may not exceed
            this many bytes; more is answered 431 and the connection closed.
        header_timeout: seconds from the first byte of a request head (or from accepting the
            connection, TLS handshake included) to its end; after that, 408 and close
            (slowloris).
        keepalive_timeout: seconds an idle kept-alive connection waits for its next request.
        max_head_size: largest REQUEST head frame we send through the tunnel, and largest
            RESPONSE head frame we accept from it.
        response_head_timeout: seconds from the end of the request (the last body bytes
            written to the agent, or the head when there is no body to stream) to the
            response head; after that, 504. While the body is being streamed, the same
            seconds without the agent taking any of it end the request: 408 when the client
            stopped sending, else 504.
    """

    max_header_bytes: int = 65536
    header_timeout: float = 10.0
    keepalive_timeout: float = 75.0
    max_head_size: int = 65536
    response_head_timeout: float = 100.0
