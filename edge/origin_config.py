"""One origin the agent publishes: an entry of the `services:` list in the agent's YAML.

```yaml
services:
  - name: web
    origin: http://127.0.0.1:8000
  - name: api
    origin: https://api.internal:8443
    ca: /etc/kokoa/api-ca.pem
    host_header: api.internal
  - name: ssh
    origin: tcp://127.0.0.1:22
```

The origin is a bare `scheme://host[:port]`: the agent reaches exactly that address and nothing
else (no path, query, credentials or fragment to smuggle a different target through).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

from pydantic import Field, field_validator, model_validator

from common.config import Frozen

DEFAULT_PORTS = {"http": 80, "https": 443}
# The same rule as the ingress's and the control plane's service names (a snapshot names them).
_SERVICE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,62}")
_HOST_HEADER = re.compile(r"[A-Za-z0-9._~\-\[\]:%!$&'()*+,;=]+")

Scheme = Literal["http", "https", "tcp"]


@dataclass(frozen=True, slots=True)
class OriginAddress:
    """Where the agent connects for a service, and how (the pool's key)."""

    scheme: Scheme
    host: str
    port: int
    tls_verify: bool = True
    ca: Path | None = None

    @property
    def tls(self) -> bool:
        return self.scheme == "https"

    @property
    def authority(self) -> str:
        """`host[:port]` as a Host header would carry it (default port left out)."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        if DEFAULT_PORTS.get(self.scheme) == self.port:
            return host
        return f"{host}:{self.port}"


def parse_origin(url: str) -> tuple[Scheme, str, int]:
    """Split an origin URL into scheme, host and port.

    Raises:
        ValueError: not `http://`, `https://` or `tcp://` with a host, or with anything more.
    """
    parts = urlsplit(url.strip())
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https", "tcp"):
        raise ValueError("scheme must be http, https or tcp")
    if parts.username is not None or parts.password is not None:
        raise ValueError("credentials are not allowed in an origin")
    if parts.path not in ("", "/") or parts.query or parts.fragment:
        raise ValueError("an origin is scheme://host:port only (no path, query or fragment)")
    host = parts.hostname
    if not host:
        raise ValueError("the origin has no host")
    port = parts.port  # raises ValueError for a bad port
    if port is None:
        if scheme == "tcp":
            raise ValueError("a tcp origin needs a port")
        port = DEFAULT_PORTS[scheme]
    if port == 0:
        raise ValueError("port 0 is not a port")
    return scheme, host, port  # type: ignore[return-value]


class OriginService(Frozen):
    """A service name and the one origin the agent reaches for it."""

    name: str
    origin: str
    host_header: str | None = None
    tls_verify: bool = True
    ca: Path | None = None
    connect_timeout: float = Field(default=5.0, gt=0, le=300)
    read_timeout: float = Field(default=60.0, gt=0, le=86400)
    max_idle_connections: int = Field(default=32, ge=0, le=10000)

    @field_validator("name")
    @classmethod
    def _check_name(cls, value: str) -> str:
        if not _SERVICE_NAME.fullmatch(value):
            raise ValueError(
                "1-63 characters of letters, digits, '.', '_' or '-', starting with a letter or "
                "digit"
            )
        return value

    @field_validator("origin")
    @classmethod
    def _check_origin(cls, value: str) -> str:
        scheme, host, port = parse_origin(value)
        shown = f"[{host}]" if ":" in host else host
        return f"{scheme}://{shown}:{port}"

    @field_validator("host_header")
    @classmethod
    def _check_host_header(cls, value: str | None) -> str | None:
        if value is not None and not _HOST_HEADER.fullmatch(value):
            raise ValueError("not a valid Host header value")
        return value

    @model_validator(mode="after")
    def _check_tls_options(self) -> OriginService:
        scheme = self.address.scheme
        if self.ca is not None and scheme != "https":
            raise ValueError("ca is only used with an https:// origin")
        if scheme == "tcp" and self.host_header is not None:
            raise ValueError("host_header is meaningless for a tcp:// origin")
        return self

    @cached_property
    def address(self) -> OriginAddress:
        scheme, host, port = parse_origin(self.origin)
        return OriginAddress(scheme, host, port, self.tls_verify, self.ca)

    @property
    def kind(self) -> Literal["http", "tcp"]:
        """Which `:kind` of tunnel stream this service takes."""
        return "tcp" if self.address.scheme == "tcp" else "http"
