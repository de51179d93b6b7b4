"""The edge agent's configuration file (YAML), validated into one frozen snapshot.

```yaml
agent: agent-1
tls: {cert: pki/agent-1.crt, key: pki/agent-1.key, ca: pki/ca.crt}
ingress:
  - {name: ingress-1, address: "127.0.0.1:7844", server_name: "127.0.0.1"}
services:
  - {name: web, origin: "http://127.0.0.1:8000"}
max_streams: 512
heartbeat_interval: 2.0
backoff: {initial: 0.5, max: 15.0, multiplier: 2.0, reset_after: 10.0}
drain_grace: 30
log: {level: info, format: json}
```

`load_settings(path)` validates the file and resolves relative paths (certificates, an
origin's `ca`) against the directory the file is in. Every error names the field (a dotted
path) and the reason. docs/edge.md is the full reference.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable, Iterable, Mapping
from functools import cached_property
from pathlib import Path
from types import MappingProxyType
from typing import Annotated, Literal, TypeVar

from pydantic import AfterValidator, Field, field_validator, model_validator

from common import pki
from common.config import ConfigError, Frozen, load, parse
from common.pki import TlsFiles
from edge.origin_config import OriginService

_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,62}")  # agent and node names (docs/pki.md)
_LABEL = re.compile(r"[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?")
T = TypeVar("T")


def parse_address(value: str) -> tuple[str, int]:
    """Split `host:port` (an IPv6 host in brackets) into host and port (1-65535).

    Raises:
        ValueError: not `host:port`, a malformed host, or a port out of range.
    """
    host, sep, port = value.rpartition(":")
    if not sep or not host or not port.isascii() or not port.isdigit():
        raise ValueError("must be host:port, with an IPv6 host in brackets ([::1]:7844)")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
        if not _is_ip(host, version=6):
            raise ValueError(f"[{host}] is not an IPv6 address")
    elif ":" in host:
        raise ValueError("an IPv6 host must be in brackets, as in [::1]:7844")
    elif not _is_ip(host) and not _is_dns_name(host):
        raise ValueError(f"{host!r} is neither an IP address nor a host name")
    number = int(port)
    if not 1 <= number <= 65535:
        raise ValueError(f"port {number} is out of range 1-65535")
    return host, number


def _is_ip(host: str, version: int | None = None) -> bool:
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return False
    return version is None or address.version == version


def _is_dns_name(name: str) -> bool:
    return len(name) <= 253 and all(_LABEL.fullmatch(label) for label in name.lower().split("."))


def _name(value: str) -> str:
    if not _NAME.fullmatch(value):
        raise ValueError(
            "1-63 characters of letters, digits, '.', '_' or '-', starting with a letter or digit"
        )
    return value


def _address(value: str) -> str:
    parse_address(value)
    return value


def _server_name(value: str) -> str:
    if not _is_ip(value) and not _is_dns_name(value):
        raise ValueError(f"{value!r} is neither an IP address nor a host name")
    return value


Name = Annotated[str, AfterValidator(_name)]
Address = Annotated[str, AfterValidator(_address)]


def _ingress_identity(value: str) -> str:
    try:
        role, _, _ = pki.parse_identity_uri(value)
    except pki.PkiError as exc:
        raise ValueError(str(exc)) from None
    if role != "ingress":
        raise ValueError(f"{value!r} names an {role}, not an ingress node")
    return value


ServerName = Annotated[str, AfterValidator(_server_name)]
IngressIdentity = Annotated[str, AfterValidator(_ingress_identity)]
Seconds = Annotated[float, Field(gt=0, le=3600)]


class TlsSettings(Frozen):
    """The agent's certificate and key, and the CA its ingress nodes' certificates chain to."""

    cert: Path
    key: Path
    ca: Path

    @property
    def files(self) -> TlsFiles:
        return TlsFiles(cert=self.cert, key=self.key, ca=self.ca)


class IngressNode(Frozen):
    """An ingress node the agent keeps a connection to."""

    name: Name
    address: Address
    server_name: ServerName | None = None  # what the node's certificate must name
    # The kokoa identity URI the node's certificate must carry (urn:kokoa:[org:<org>:]ingress:
    # <name>). In control mode it is the node's id from the snapshot; in a file it is optional.
    identity: IngressIdentity | None = None

    @property
    def host(self) -> str:
        return parse_address(self.address)[0]

    @property
    def port(self) -> int:
        return parse_address(self.address)[1]

    @property
    def verify_name(self) -> str:
        """The DNS name or IP address the node's certificate is checked against."""
        return self.server_name or self.host


class BackoffSettings(Frozen):
    """Reconnection delays: full jitter in [0, min(max, initial * multiplier**attempt)]."""

    initial: Seconds = 0.5
    max: Seconds = 15.0
    multiplier: float = Field(default=2.0, ge=1.0, le=10.0)
    reset_after: Seconds = 10.0  # a connection up this long starts the sequence again

    @model_validator(mode="after")
    def _check_order(self) -> BackoffSettings:
        if self.max < self.initial:
            raise ValueError(f"max ({self.max:g}) must be at least initial ({self.initial:g})")
        return self


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


class EdgeSettings(Frozen):
    """The whole configuration of one edge agent."""

    agent: Name
    tls: TlsSettings
    ingress: tuple[IngressNode, ...]
    services: tuple[OriginService, ...]
    max_streams: int = Field(default=512, ge=1, le=100_000)
    heartbeat_interval: Seconds = 2.0
    hello_timeout: Seconds = 5.0
    backoff: BackoffSettings = BackoffSettings()
    drain_grace: Seconds = 30.0
    log: LogSettings = LogSettings()
    channel: ChannelSettings = ChannelSettings()

    @field_validator("ingress")
    @classmethod
    def _check_ingress(cls, nodes: tuple[IngressNode, ...]) -> tuple[IngressNode, ...]:
        if not nodes:
            raise ValueError("list at least one ingress node")
        _no_duplicates(nodes, lambda n: n.name, "node name")
        _no_duplicates(nodes, lambda n: n.address, "node address")
        return nodes

    @field_validator("services")
    @classmethod
    def _check_services(cls, services: tuple[OriginService, ...]) -> tuple[OriginService, ...]:
        if not services:
            raise ValueError("list at least one service")
        _no_duplicates(services, lambda s: s.name, "service name")
        return services

    @cached_property
    def service_map(self) -> Mapping[str, OriginService]:
        """The services by name (read-only; one per snapshot, shared by every stream)."""
        return MappingProxyType({service.name: service for service in self.services})

    @property
    def service_names(self) -> tuple[str, ...]:
        return tuple(service.name for service in self.services)

    def under(self, base: Path) -> EdgeSettings:
        """These settings with every relative file path taken relative to `base`."""
        tls = TlsSettings(
            cert=_under(base, self.tls.cert),
            key=_under(base, self.tls.key),
            ca=_under(base, self.tls.ca),
        )
        # Rebuilt, not model_copy'd: a copy would keep the cached `address` (and its old `ca`).
        services = tuple(
            OriginService.model_validate(
                {**service.model_dump(exclude_unset=True), "ca": _under(base, service.ca)}
            )
            if service.ca is not None
            else service
            for service in self.services
        )
        data = self.model_dump(exclude_unset=True) | {"tls": tls, "services": services}
        return type(self).model_validate(data)


class ControlledEdgeSettings(EdgeSettings):
    """An agent in control mode: its ingress nodes and services come from the control plane's
    snapshots (none before the first one, and an agent may have none at all)."""

    ingress: tuple[IngressNode, ...] = ()
    services: tuple[OriginService, ...] = ()

    @field_validator("ingress")
    @classmethod
    def _check_ingress(cls, nodes: tuple[IngressNode, ...]) -> tuple[IngressNode, ...]:
        _no_duplicates(nodes, lambda n: n.name, "node name")
        _no_duplicates(nodes, lambda n: n.address, "node address")
        return nodes

    @field_validator("services")
    @classmethod
    def _check_services(cls, services: tuple[OriginService, ...]) -> tuple[OriginService, ...]:
        _no_duplicates(services, lambda s: s.name, "service name")
        return services

    def with_control(
        self, ingress: Iterable[Mapping[str, object]], services: Iterable[Mapping[str, object]]
    ) -> ControlledEdgeSettings:
        """These settings with the snapshot's `ingress` and `services`, validated.

        Raises:
            common.config.ConfigError: an entry is invalid (each field named).
        """
        data = self.model_dump(exclude_unset=True)
        data |= {"ingress": list(ingress), "services": list(services)}
        return parse(data, ControlledEdgeSettings, source="the control plane's snapshot")


def _under(base: Path, path: Path) -> Path:
    path = path.expanduser()
    return path if path.is_absolute() else base / path


def _no_duplicates(items: Iterable[T], key: Callable[[T], str], what: str) -> None:
    seen: dict[str, int] = {}
    for index, item in enumerate(items):
        value = key(item)
        if value in seen:
            raise ValueError(f"duplicate {what} {value!r} (entries {seen[value]} and {index})")
        seen[value] = index


CONTROLLED = ("ingress", "services")  # what the control plane's snapshots decide


def load_settings(
    path: Path, overlay: Mapping[str, object] | None = None, *, controlled: bool = False
) -> EdgeSettings:
    """Read and validate the agent's configuration file at `path`.

    `overlay`: what the enrollment with the control plane decides (`agent` and `tls`); the
    file may omit those fields (see `common.config.load`). `controlled`: the agent runs with
    `--control`, so its ingress nodes and services come from the control plane's snapshots:
    the file must not set them (the result is a `ControlledEdgeSettings` with none).

    Raises:
        common.config.ConfigError: unreadable, not YAML, or invalid; names each field.
    """
    if not controlled:
        return load(path, EdgeSettings, overlay=overlay).under(path.parent.resolve())
    settings = load(path, ControlledEdgeSettings, overlay=overlay)
    given = [field for field in CONTROLLED if field in settings.model_fields_set]
    if given:
        reason = (
            "in control mode this comes from the control plane (docs/enrollment.md); "
            "remove it from the file"
        )
        raise ConfigError(str(path), [(field, reason) for field in given])
    return settings.under(path.parent.resolve())


def check_files(settings: EdgeSettings) -> list[tuple[str, str]]:
    """Read the files `settings` names; return (field, reason) for each that will not do.

    Checks that the certificate, key and CA load, that the certificate is an agent's issued
    to `agent` (else every node refuses us), and that each origin CA bundle loads.
    """
    problems: list[tuple[str, str]] = []
    tls = settings.tls
    try:
        cert = pki.load_certificates(tls.cert)[0]
        identity = pki.identity_from_certificate(cert)
        if identity.role != "agent" or identity.name != settings.agent:
            problems.append(
                (
                    "tls.cert",
                    f"issued to {identity.role} {identity.name!r}, not agent {settings.agent!r}",
                )
            )
    except pki.PkiError as exc:
        problems.append(("tls.cert", str(exc)))
    for field, load_file in (("tls.key", pki.load_private_key), ("tls.ca", pki.load_certificates)):
        try:
            load_file(getattr(tls, field.removeprefix("tls.")))
        except pki.PkiError as exc:
            problems.append((field, str(exc)))
    for index, service in enumerate(settings.services):
        if service.ca is not None:
            try:
                pki.load_certificates(service.ca)
            except pki.PkiError as exc:
                problems.append((f"services.{index}.ca", str(exc)))
    return problems
