"""Field types shared by the API schemas: names, host names, addresses, origins, labels."""

from __future__ import annotations

import ipaddress
import re
import unicodedata
from typing import Annotated
from urllib.parse import urlsplit

from pydantic import AfterValidator, Field, StringConstraints

_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,62}")
_DNS_LABEL = re.compile(r"[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?")
_LABEL_KEY = re.compile(r"[a-z0-9]([a-z0-9._/-]{0,61}[a-z0-9])?")
_LABEL_VALUE = re.compile(r"[A-Za-z0-9._-]{0,63}")
_HOST_HEADER = re.compile(r"[A-Za-z0-9._~\-\[\]:]{1,255}")
MAX_LABELS = 32


def _name(value: str) -> str:
    if not _NAME.fullmatch(value):
        raise ValueError("1-63 of letters, digits, '.', '_' or '-', starting alphanumeric")
    return value


def is_dns_name(name: str) -> bool:
    labels = name.split(".")
    return len(name) <= 253 and len(labels) >= 2 and all(_DNS_LABEL.fullmatch(x) for x in labels)


def _hostname(value: str) -> str:
    value = value.strip().lower().removesuffix(".")
    try:
        value = value.encode("idna").decode("ascii") if not value.isascii() else value
    except UnicodeError:
        raise ValueError("not a valid internationalised host name") from None
    bare = value.removeprefix("*.")
    if "*" in bare:
        raise ValueError("a wildcard is allowed only as the leading label: *.example.com")
    if not is_dns_name(bare):
        raise ValueError("not a host name: two or more labels of a-z, 0-9 and '-', ≤ 253 chars")
    return value


def split_address(value: str) -> tuple[str, int]:
    """`host:port` (IPv6 in brackets) → (host, port); ValueError when malformed."""
    host, sep, port = value.rpartition(":")
    if not sep or not host or not port.isascii() or not port.isdigit() or int(port) > 65535:
        raise ValueError("must be host:port with a port of 1-65535 ([::1]:443 for IPv6)")
    if host.startswith("[") and host.endswith("]"):
        ipaddress.IPv6Address(host[1:-1])
    elif not _is_ip(host) and not all(_DNS_LABEL.fullmatch(x) for x in host.lower().split(".")):
        raise ValueError(f"{host!r} is neither an IP address nor a host name")
    if int(port) == 0:
        raise ValueError("port 0 is not a port")
    return host, int(port)


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def _address(value: str) -> str:
    split_address(value)
    return value


def _origin(value: str) -> str:
    parts = urlsplit(value.strip())
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https"):
        raise ValueError("the origin must be http:// or https://")
    if parts.username is not None or parts.password is not None:
        raise ValueError("credentials are not allowed in an origin")
    if parts.path not in ("", "/") or parts.query or parts.fragment:
        raise ValueError("an origin is scheme://host[:port] only (no path, query or fragment)")
    host = parts.hostname
    if not host:
        raise ValueError("the origin has no host")
    try:
        port = parts.port or (443 if scheme == "https" else 80)
    except ValueError:
        raise ValueError("the origin's port is not a number in 1-65535") from None
    if port == 0:
        raise ValueError("port 0 is not a port")
    shown = f"[{host}]" if ":" in host else host
    return f"{scheme}://{shown}:{port}"


def _host_header(value: str | None) -> str | None:
    if value is not None and not _HOST_HEADER.fullmatch(value):
        raise ValueError("not a valid Host header value")
    return value


def _labels(value: dict[str, str]) -> dict[str, str]:
    if len(value) > MAX_LABELS:
        raise ValueError(f"at most {MAX_LABELS} labels")
    for key, item in value.items():
        if not _LABEL_KEY.fullmatch(key):
            raise ValueError(f"label key {key!r}: 1-63 of a-z, 0-9, '.', '_', '/', '-'")
        if not _LABEL_VALUE.fullmatch(item):
            raise ValueError(f"label value {item!r}: up to 63 of letters, digits, '.', '_', '-'")
    return value


Name = Annotated[str, AfterValidator(_name)]
Hostname = Annotated[str, Field(max_length=300), AfterValidator(_hostname)]
Address = Annotated[str, Field(max_length=300), AfterValidator(_address)]
Origin = Annotated[str, Field(max_length=300), AfterValidator(_origin)]
HostHeader = Annotated[str | None, AfterValidator(_host_header)]
Labels = Annotated[dict[str, str], AfterValidator(_labels)]


def _printable(value: str) -> str:
    """No control characters (NUL and friends break databases and terminals), except in text
    blocks newline and tab."""
    if any(unicodedata.category(ch) in ("Cc", "Cs") and ch not in "\n\t" for ch in value):
        raise ValueError("control characters are not allowed")
    return value


def _single_line(value: str) -> str:
    if "\n" in value or "\t" in value:
        raise ValueError("must be a single line")
    return _printable(value)


Text = Annotated[str, StringConstraints(max_length=1000), AfterValidator(_printable)]
DisplayName = Annotated[
    str, StringConstraints(strip_whitespace=True, max_length=100), AfterValidator(_single_line)
]
OrgName = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=100),
    AfterValidator(_single_line),
]
SearchText = Annotated[str, StringConstraints(max_length=100), AfterValidator(_single_line)]
