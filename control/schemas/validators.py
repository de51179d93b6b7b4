"""Field types shared by the API schemas: names, host names, addresses, origins, labels.

Each type carries its rule as a JSON-schema `pattern` that pydantic enforces, so the OpenAPI
document tells clients exactly what is accepted (and fuzzers generate valid values); extra
checks a regex cannot express (IPv6 syntax) only ever narrow it further.
"""

from __future__ import annotations

import ipaddress
import unicodedata
from typing import Annotated

from pydantic import AfterValidator, Field, StringConstraints

_LABEL = r"[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
_PORT = r"(6553[0-5]|655[0-2][0-9]|65[0-4][0-9]{2}|6[0-4][0-9]{3}|[1-5][0-9]{4}|[1-9][0-9]{0,3})"
_HOST = rf"({_LABEL}\.)*{_LABEL}"
_IPV6 = r"\[[0-9A-Fa-f:.]{2,45}\]"
NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$"
HOSTNAME_PATTERN = rf"^(\*\.)?({_LABEL}\.)+{_LABEL}\.?$"
ADDRESS_PATTERN = rf"^({_HOST}|{_IPV6}):{_PORT}$"
ORIGIN_PATTERN = rf"^[Hh][Tt][Tt][Pp][Ss]?://({_HOST}|{_IPV6})(:{_PORT})?/?$"
HOST_HEADER_PATTERN = rf"^({_HOST}|{_IPV6})(:{_PORT})?$"
LABEL_KEY_PATTERN = r"^[a-z0-9]([a-z0-9._/-]{0,61}[a-z0-9])?$"
LABEL_VALUE_PATTERN = r"^[A-Za-z0-9._-]{0,63}$"
MAX_LABELS = 32
# What each pattern means, for error messages people can act on.
PATTERN_HINTS = {
    NAME_PATTERN: "1-63 letters, digits, '.', '_' or '-', starting with a letter or digit",
    HOSTNAME_PATTERN: "a host name such as app.example.com or *.example.com (IDNs in xn-- form)",
    ADDRESS_PATTERN: "host:port, with an IPv6 host in brackets ([2001:db8::1]:443)",
    ORIGIN_PATTERN: "http(s)://host[:port] and nothing more (no path, query or credentials)",
    HOST_HEADER_PATTERN: "host[:port]",
    LABEL_KEY_PATTERN: "1-63 of a-z, 0-9, '.', '_', '/' or '-', starting and ending alphanumeric",
    LABEL_VALUE_PATTERN: "up to 63 letters, digits, '.', '_' or '-'",
}


def _hostname(value: str) -> str:
    value = value.lower().removesuffix(".")
    if len(value) > 253:
        raise ValueError("a host name has at most 253 characters")
    return value


def _check_ipv6(value: str) -> str:
    if "[" in value:
        inside = value[value.index("[") + 1 : value.index("]")]
        try:
            ipaddress.IPv6Address(inside)
        except ValueError:
            raise ValueError(f"[{inside}] is not an IPv6 address") from None
    return value


def _origin(value: str) -> str:
    """Canonical form scheme://host:port (scheme and host lowercased, port explicit)."""
    value = _check_ipv6(value).removesuffix("/")
    scheme, _, rest = value.partition("://")
    scheme = scheme.lower()
    if rest.startswith("["):
        host, _, port = rest[1:].partition("]")
        host, port = f"[{host.lower()}]", port.removeprefix(":")
    else:
        host, _, port = rest.partition(":")
        host = host.lower()
    return f"{scheme}://{host}:{port or (443 if scheme == 'https' else 80)}"


def split_address(value: str) -> tuple[str, int]:
    """`host:port` (IPv6 in brackets) → (host, port)."""
    host, _, port = value.rpartition(":")
    return host.strip("[]"), int(port)


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


Name = Annotated[str, StringConstraints(pattern=NAME_PATTERN)]
Hostname = Annotated[
    str, StringConstraints(max_length=254, pattern=HOSTNAME_PATTERN), AfterValidator(_hostname)
]
Address = Annotated[
    str, StringConstraints(max_length=300, pattern=ADDRESS_PATTERN), AfterValidator(_check_ipv6)
]
Origin = Annotated[
    str, StringConstraints(max_length=300, pattern=ORIGIN_PATTERN), AfterValidator(_origin)
]
HostHeader = Annotated[
    str, StringConstraints(max_length=255, pattern=HOST_HEADER_PATTERN), AfterValidator(_check_ipv6)
]
LabelKey = Annotated[str, StringConstraints(pattern=LABEL_KEY_PATTERN)]
LabelValue = Annotated[str, StringConstraints(pattern=LABEL_VALUE_PATTERN)]
Labels = Annotated[dict[LabelKey, LabelValue], Field(max_length=MAX_LABELS)]
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
