"""The ingress node's configuration file (YAML), validated into frozen pydantic models.

```yaml
node: ingress-1
tunnel: {listen: "127.0.0.1:7844", cert: pki/ingress-1.crt, key: pki/ingress-1.key, ca: pki/ca.crt}
http: {listen: "127.0.0.1:8080"}
https: {listen: "127.0.0.1:8443", certificates: [{cert: site.crt, key: site.key}]}
admin: {listen: "127.0.0.1:9901"}
services:
  - {name: web, hosts: [web.localhost, "*.web.localhost"], path_prefix: /, agents: [agent-1]}
limits: {heartbeat_interval: 2}
log: {level: info, format: json}
```

`load_settings(path)` validates the file and resolves relative paths against the directory
the file is in. Every error names the field (a dotted path) and the reason. docs/ingress.md
is the full reference.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Annotated, Literal

from pydantic import AfterValidator, Field, field_validator, model_validator

from common.config import ConfigError, Frozen, load, parse
from common.pki import TlsFiles

_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,62}")  # node, service and agent ids
_LABEL = re.compile(r"[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?")
_PATH_PREFIX = re.compile(r"/[A-Za-z0-9\-._~!$&'()*+,;=:@/]*")


def parse_address(value: str) -> tuple[str, int]:
    """Split `host:port` (an IPv6 host in brackets) into host and port.

    Raises:
        ValueError: not `host:port`, an empty or malformed host, or a port out of 0-65535.
    """
    host, sep, port = value.rpartition(":")
    if not sep or not host or not port.isascii() or not port.isdigit():
        raise ValueError("must be host:port, with an IPv6 host in brackets ([::1]:8080)")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
        if not _is_ipv6(host):
            raise ValueError(f"[{host}] is not an IPv6 address")
    elif ":" in host:
        raise ValueError("an IPv6 host must be in brackets, as in [::1]:8080")
    elif not _is_ip(host) and not _is_dns_name(host):
        raise ValueError(f"{host!r} is neither an IP address nor a host name")
    number = int(port)
    if number > 65535:
        raise ValueError(f"port {number} is out of range 0-65535")
    return host, number


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def _is_ipv6(host: str) -> bool:
    try:
        ipaddress.IPv6Address(host)
    except ValueError:
        return False
    return True


def _is_dns_name(name: str) -> bool:
    return len(name) <= 253 and all(_LABEL.fullmatch(label) for label in name.lower().split("."))


def _address(value: str) -> str:
    parse_address(value)
    return value


def _hostname(value: str) -> str:
    if value != value.lower():
        raise ValueError(f"host names are lowercase: write {value.lower()!r}")
    name = value[2:] if value.startswith("*.") else value
    if "*" in name:
        raise ValueError("a wildcard is allowed only as the leading label, as in *.example.com")
    if name.endswith("."):
        raise ValueError("write the host name without a trailing dot")
    if not _is_dns_name(name):
        raise ValueError(
            f"{value!r} is not a host name: labels of 1-63 of a-z, 0-9 and '-', "
            "not starting or ending with '-', at most 253 characters in all"
        )
    return value


def _name(value: str) -> str:
    if not _NAME.fullmatch(value):
        raise ValueError(
            "1-63 characters of letters, digits, '.', '_' or '-', starting with a letter or digit"
        )
    return value


def _agent_ref(value: str) -> str:
    org, _, agent = value.rpartition("/")
    if org:
        _name(org)
    _name(agent)
    return value


Address = Annotated[str, AfterValidator(_address)]
Hostname = Annotated[str, AfterValidator(_hostname)]
Name = Annotated[str, AfterValidator(_name)]
AgentRef = Annotated[str, AfterValidator(_agent_ref)]
Seconds = Annotated[float, Field(gt=0, le=3600)]


class Listener(Frozen):
    """A TCP or UDP listening address."""

    listen: Address

    @property
    def host(self) -> str:
        return parse_address(self.listen)[0]

    @property
    def port(self) -> int:
        return parse_address(self.listen)[1]


class TunnelSettings(Listener):
    """The QUIC listener agents dial, and this node's certificate (mutual TLS)."""

    cert: Path
    key: Path
    ca: Path

    @property
    def tls(self) -> TlsFiles:
        return TlsFiles(cert=self.cert, key=self.key, ca=self.ca)


class CertificatePair(Frozen):
    """A PEM certificate chain and its key, served to clients whose SNI it covers."""

    cert: Path
    key: Path


class HttpsSettings(Listener):
    """The HTTPS listener and its certificates from files (standalone: at least one; in
    control mode the control plane's snapshot adds its own, so the list may be empty)."""

    certificates: tuple[CertificatePair, ...] = ()


class AdminSettings(Listener):
    """Health, readiness and metrics; keep it on loopback or a private network."""

    listen: Address = "127.0.0.1:9901"


class ServiceConfig(Frozen):
    """A published service: which hosts (and path prefix) reach it, which agents may serve it."""

    name: Name
    hosts: tuple[Hostname, ...]
    path_prefix: str = "/"
    strip_prefix: bool = False
    agents: tuple[AgentRef, ...] = ()

    @field_validator("hosts")
    @classmethod
    def _check_hosts(cls, hosts: tuple[str, ...]) -> tuple[str, ...]:
        if not hosts:
            raise ValueError("list at least one host name")
        if len(set(hosts)) != len(hosts):
            raise ValueError("a host name is listed twice")
        return hosts

    @field_validator("path_prefix")
    @classmethod
    def _check_prefix(cls, value: str) -> str:
        if not _PATH_PREFIX.fullmatch(value):
            raise ValueError(
                "must start with '/' and hold only unreserved characters, sub-delims, ':', '@' "
                "and '/' (no query, fragment, percent-encoding or spaces)"
            )
        segments = value.split("/")
        if "." in segments or ".." in segments or "//" in value:
            raise ValueError("must not contain '.' or '..' segments or an empty segment ('//')")
        return value.rstrip("/") or "/"

    @model_validator(mode="after")
    def _check_strip(self) -> ServiceConfig:
        if self.strip_prefix and self.path_prefix == "/":
            raise ValueError("strip_prefix needs a path_prefix other than '/'")
        return self

    def allows(self, agent: str, org: str | None) -> bool:
        """Whether the agent with this certificate identity may serve the service."""
        return (f"{org}/{agent}" if org else agent) in self.agents


class Limits(Frozen):
    max_header_bytes: int = Field(default=65536, ge=1024, le=1 << 20)
    header_timeout: Seconds = 10.0
    keepalive_timeout: float = Field(default=75.0, ge=0, le=3600)
    response_head_timeout: Seconds = 100.0
    max_head_size: int = Field(default=65536, ge=1024, le=65536)
    max_streams_per_agent: int = Field(default=512, ge=1, le=100_000)
    hello_timeout: Seconds = 5.0
    heartbeat_interval: Seconds = 2.0


class LogSettings(Frozen):
    level: Literal["debug", "info", "warning", "error", "critical"] = "info"
    format: Literal["json", "text"] = "json"


class ChannelSettings(Frozen):
    """The control channel (control mode only): how soon to dial the control plane again.

    Full jitter in [0, min(backoff_max, backoff_initial * 2**attempt)]; a 4403 raises the cap
    to 5 minutes (docs/protocol.md, "Control channel").
    """

    backoff_initial: Seconds = 0.5
    backoff_max: Annotated[float, Field(gt=0, le=300)] = 30.0

    @model_validator(mode="after")
    def _check_order(self) -> ChannelSettings:
        if self.backoff_max < self.backoff_initial:
            raise ValueError(
                f"backoff_max ({self.backoff_max:g}) must be at least "
                f"backoff_initial ({self.backoff_initial:g})"
            )
        return self


class IngressSettings(Frozen):
    """The whole configuration of one ingress node."""

    node: Name
    tunnel: TunnelSettings
    http: Listener | None = None
    https: HttpsSettings | None = None
    admin: AdminSettings | None = AdminSettings()
    services: tuple[ServiceConfig, ...] = ()
    limits: Limits = Limits()
    log: LogSettings = LogSettings()
    drain_grace: Seconds = 10.0
    channel: ChannelSettings = ChannelSettings()

    @field_validator("services")
    @classmethod
    def _check_services(cls, services: tuple[ServiceConfig, ...]) -> tuple[ServiceConfig, ...]:
        _no_duplicates(services, lambda s: [s.name], "service name")
        _no_duplicates(services, lambda s: [f"{h}{s.path_prefix}" for h in s.hosts], "route")
        return services

    @model_validator(mode="after")
    def _check_listeners(self) -> IngressSettings:
        if self.http is None and self.https is None:
            raise ValueError("configure http, https or both: a node needs a public listener")
        tcp = [
            (name, listener.listen)
            for name, listener in self._tcp_listeners()
            if listener.port  # port 0 picks a free port: never a clash
        ]
        for i, (name, address) in enumerate(tcp):
            for other, again in tcp[i + 1 :]:
                if address == again:
                    raise ValueError(f"{name}.listen and {other}.listen are both {address}")
        return self

    def _tcp_listeners(self) -> list[tuple[str, Listener]]:
        named = [("http", self.http), ("https", self.https), ("admin", self.admin)]
        return [(name, listener) for name, listener in named if listener is not None]

    def under(self, base: Path) -> IngressSettings:
        """These settings with every relative file path taken relative to `base`."""
        tunnel = self.tunnel.model_copy(
            update={f: _under(base, getattr(self.tunnel, f)) for f in ("cert", "key", "ca")}
        )
        https = self.https
        if https is not None:
            pairs = tuple(
                CertificatePair(cert=_under(base, p.cert), key=_under(base, p.key))
                for p in https.certificates
            )
            https = https.model_copy(update={"certificates": pairs})
        return self.model_copy(update={"tunnel": tunnel, "https": https})


def _under(base: Path, path: Path) -> Path:
    path = path.expanduser()
    return path if path.is_absolute() else base / path


def _no_duplicates(
    services: Sequence[ServiceConfig], keys: Callable[[ServiceConfig], Iterable[str]], what: str
) -> None:
    seen: dict[str, int] = {}
    for index, service in enumerate(services):
        for key in keys(service):
            if key in seen:
                raise ValueError(f"duplicate {what} {key!r} (entries {seen[key]} and {index})")
            seen[key] = index


CONTROLLED = ("services",)  # what the control plane's snapshots decide in control mode


def load_settings(
    path: Path, overlay: Mapping[str, object] | None = None, *, controlled: bool = False
) -> IngressSettings:
    """Read and validate the ingress configuration file at `path`.

    `overlay`: what the enrollment with the control plane decides (`node`, and the tunnel's
    `cert`, `key` and `ca`); the file may omit those fields (see `common.config.load`).
    `controlled`: the node runs with `--control`, so its services come from the control
    plane's snapshots: the file must not set `services` (the result has none), and
    `https.certificates` may be empty (the snapshots bring certificates too).

    Raises:
        common.config.ConfigError: unreadable, not YAML, or invalid; names each field.
    """
    settings = load(path, IngressSettings, overlay=overlay)
    if not controlled and settings.https is not None and not settings.https.certificates:
        reason = "list at least one {cert, key} pair (only in control mode may it be empty)"
        raise ConfigError(str(path), [("https.certificates", reason)])
    if controlled:
        given = [field for field in CONTROLLED if field in settings.model_fields_set]
        if given:
            reason = (
                "in control mode this comes from the control plane (docs/enrollment.md); "
                "remove it from the file"
            )
            raise ConfigError(str(path), [(field, reason) for field in given])
    return settings.under(path.parent.resolve())


def with_services(
    settings: IngressSettings, services: Sequence[Mapping[str, object]]
) -> IngressSettings:
    """`settings` with `services` in place of its own, validated as if read from a file.

    Raises:
        common.config.ConfigError: a service is invalid, or two clash (names each field).
    """
    data = settings.model_dump() | {"services": list(services)}
    return parse(data, IngressSettings, source="the control plane's snapshot")
