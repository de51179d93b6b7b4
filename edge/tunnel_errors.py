"""Why a tunnel connection ended, as types the supervisor decides on (never message text).

- `HandshakeFailed`: no connection — unreachable, TLS failed, the node's certificate refused,
  or no HELLO_ACK in time. The supervisor backs off.
- `Unauthorized`: the node refused our identity (UNAUTHORIZED/REVOKED) or every service we
  claim. Retrying soon will not help: the supervisor backs off to the cap.
- `CredentialsError`: our own certificate, key or CA file cannot be loaded. Backs off to the cap.
- `WrongNode`: the node's certificate is valid but names another identity than the one we
  expect at that address (another node, or anything else our CA certified). We closed before
  saying HELLO. Backs off to the cap.
- `HeartbeatTimeout`: the node sent nothing for 3 heartbeat intervals; we closed. Backs off.
- `ProtocolViolation`: the node broke the control-stream protocol; we closed. Backs off.
- `Disconnected`: the connection closed (by the node, or lost). Backs off.
"""

from __future__ import annotations

from collections.abc import Mapping

from common.transport import ConnectionClosed
from common.wire import ErrorCode

REFUSALS = frozenset({ErrorCode.UNAUTHORIZED, ErrorCode.REVOKED})


class TunnelError(Exception):
    """Base of the typed reasons a tunnel connection failed or ended."""

    close_code: ErrorCode = ErrorCode.NO_ERROR
    """The code we close the connection with when the error is ours to report."""


class HandshakeFailed(TunnelError):
    """No usable connection: the QUIC/TLS handshake or the HELLO exchange failed."""


class Unauthorized(TunnelError):
    """The node refused us: our identity, or every service we claim (`rejected` says why)."""

    def __init__(self, message: str, rejected: Mapping[str, str] | None = None) -> None:
        super().__init__(message)
        self.rejected = dict(rejected or {})


class CredentialsError(TunnelError):
    """Our certificate, key or CA bundle could not be loaded."""


class WrongNode(TunnelError):
    """The certificate presented at the node's address is not that node's."""

    close_code = ErrorCode.UNAUTHORIZED


class HeartbeatTimeout(TunnelError):
    """No frame from the node for three heartbeat intervals."""

    close_code = ErrorCode.HEARTBEAT_TIMEOUT


class ProtocolViolation(TunnelError):
    """The node sent something the control-stream protocol forbids."""

    close_code = ErrorCode.PROTOCOL_ERROR


class Disconnected(TunnelError):
    """The connection closed; `code`, `reason` and `by_peer` are the transport's."""

    def __init__(self, closed: ConnectionClosed, *, drained: bool = False) -> None:
        detail = " after the node asked us to drain" if drained else ""
        super().__init__(f"{closed}{detail}")
        self.code = closed.code
        self.reason = closed.reason
        self.by_peer = closed.by_peer
        self.drained = drained


def classify(closed: ConnectionClosed, *, drained: bool = False) -> TunnelError:
    """The typed error for a connection that closed under an established tunnel."""
    if closed.by_peer and closed.code in REFUSALS:
        name = ErrorCode(closed.code).name
        return Unauthorized(f"the node closed the connection with {name}: {closed.reason}")
    return Disconnected(closed, drained=drained)


def classify_connect(closed: ConnectionClosed) -> TunnelError:
    """The typed error for a connection attempt that failed before the tunnel was up."""
    if closed.by_peer and closed.code in REFUSALS:
        name = ErrorCode(closed.code).name
        return Unauthorized(f"the node refused our certificate ({name}): {closed.reason}")
    return HandshakeFailed(str(closed))
