"""What can go wrong between the agent and an origin, as types the proxy maps to reset codes.

| error | tunnel reset code |
|---|---|
| `OriginRefused` — refused, unreachable, name not resolved | `ORIGIN_REFUSED` |
| `OriginTimeout` — no connection, response byte or progress in time | `ORIGIN_TIMEOUT` |
| `OriginProtocolError` — unparsable, too large, or not fit for the tunnel | `ORIGIN_ERROR` |
| `OriginTLSError` — handshake or certificate verification failed | `ORIGIN_ERROR` |
| `OriginClosed` — the origin closed the connection before the exchange was over | `ORIGIN_ERROR` |

Messages are for the agent's logs; they never travel on the wire.
"""

from __future__ import annotations


class OriginError(Exception):
    """Base of every failure to talk to an origin."""


class OriginRefused(OriginError):
    """The origin refused the connection or could not be reached."""


class OriginTimeout(OriginError):
    """The origin did not connect, answer or make progress within its timeout."""


class OriginProtocolError(OriginError):
    """The origin's response is malformed, too large, or cannot be carried on the tunnel."""


class OriginTLSError(OriginError):
    """TLS to an https origin failed (handshake, certificate, CA bundle)."""


class OriginClosed(OriginError):
    """The origin closed the connection while we still needed it.

    `before_response` is true when not a single byte of the response had arrived: on a
    kept-alive connection that means the origin had closed it while idle, and a request
    without a body may safely be sent again on a fresh connection.
    """

    def __init__(self, message: str, *, before_response: bool = False) -> None:
        super().__init__(message)
        self.before_response = before_response
