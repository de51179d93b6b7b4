"""What the proxy sends an origin and what it gets back, as plain values."""

from __future__ import annotations

from dataclasses import dataclass

Headers = tuple[tuple[bytes, bytes], ...]


@dataclass(frozen=True, slots=True)
class OriginRequest:
    """An HTTP/1.1 request head, serialized, and how its body is framed."""

    head: bytes
    method: str
    length: int | None = None  # known body length
    chunked: bool = False  # body of unknown length, chunk-framed towards the origin
    upgrade: bool = False

    @property
    def has_body(self) -> bool:
        return self.chunked or bool(self.length)

    @property
    def expects_body(self) -> bool:
        """Whether the response may carry a body (not to HEAD)."""
        return self.method != "HEAD"


@dataclass(frozen=True, slots=True)
class OriginResponse:
    """The head of the origin's final response (header names lowercased, order kept)."""

    status: int
    headers: Headers
    keep_alive: bool
