"""Head fields: `name length | name | value length | value`, repeated (docs/protocol.md §5.1).

The grammar lives here once and serves both directions: every check raises `ValueError`,
which encoders let through (our mistake) and decoders turn into `ProtocolError` (theirs).
That way an encoder accepts exactly the heads a decoder accepts.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable

from common.wire.errors import HeadTooLargeError
from common.wire.varint import decode_varint, encode_varint

Headers = tuple[tuple[bytes, bytes], ...]

MAX_HEADERS = 256
"""Most regular header fields in one head (pseudo-fields, unique by rule, are not counted)."""

HOP_BY_HOP: frozenset[bytes] = frozenset(
    (b"connection", b"keep-alive", b"proxy-connection", b"te", b"transfer-encoding", b"trailer")
)
"""Header names that never cross the tunnel: each hop frames and manages its own connection."""

_NAME = re.compile(rb"[!#$%&'*+\-.^_`|~0-9a-z]+")  # RFC 9110 tchar, lowercase letters only
_TOKEN = re.compile(rb"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")  # RFC 9110 token (a method)
_BAD_VALUE = re.compile(rb"[\r\n\x00]")
# Names joined by "\n": the pseudo-fields' (":" and a name) first, then "\n" and a name for
# each regular header: what `_all_valid` checks in one match.
_NAMES = re.compile(
    rb"(?::[!#$%&'*+\-.^_`|~0-9a-z]+(?:\n:[!#$%&'*+\-.^_`|~0-9a-z]+)*)?"
    rb"(?:\n[!#$%&'*+\-.^_`|~0-9a-z]+)*"
)
_SPACE_OR_CTL = re.compile(rb"[\x00-\x20\x7f]")
_STATUS = re.compile(rb"[1-5][0-9][0-9]")
_PORT = re.compile(rb"[0-9]{1,5}")
_LENGTH = re.compile(rb"[0-9]{1,19}")
_IPV4 = re.compile(
    rb"(?:(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])\.){3}"
    rb"(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])"
)


def encode_fields(fields: Iterable[tuple[bytes, bytes]]) -> bytes:
    """Serialize `(name, value)` pairs; the caller has validated them."""
    out = bytearray()
    for name, value in fields:
        if len(name) < 0x40 and len(value) < 0x40:  # the usual case: 1-byte lengths
            out.append(len(name))
            out += name
            out.append(len(value))
            out += value
        else:
            out += encode_varint(len(name)) + name + encode_varint(len(value)) + value
    return bytes(out)


def split_fields(payload: bytes, max_headers: int) -> tuple[dict[bytes, bytes], Headers]:
    """Split a head payload into its pseudo-fields and its regular headers.

    Checks the framing of each field, that names are valid, that pseudo-fields come first and
    do not repeat, values, and the hop-by-hop ban; not which pseudo-fields are allowed.

    Raises:
        HeadTooLargeError: more than `max_headers` regular headers.
        ValueError: anything else malformed.
    """
    # The hot path of every tunnel stream: one pass that only frames the fields (the 1-byte
    # varint case decoded in place), then every name and value checked at once, with one
    # regular expression over all of them joined. Anything wrong (framing, a field out of
    # place, too many, a bad name or value) sends the payload to `_checked_fields`, which
    # walks it field by field and raises for the first problem.
    pseudo: dict[bytes, bytes] = {}
    headers: list[tuple[bytes, bytes]] = []
    pos, end = 0, len(payload)
    while pos < end:
        size = payload[pos]
        if size < 0x40:
            pos += 1
        elif (decoded := decode_varint(payload, pos)) is not None:
            size, pos = decoded
        else:
            break
        name = payload[pos : pos + size]
        pos += size
        if pos >= end:
            break
        size = payload[pos]
        if size < 0x40:
            pos += 1
        elif (decoded := decode_varint(payload, pos)) is not None:
            size, pos = decoded
        else:
            break
        value = payload[pos : pos + size]
        pos += size
        if pos > end:
            break
        if name[:1] == b":":
            if headers or name in pseudo:
                break
            pseudo[name] = value
        elif len(headers) == max_headers:
            break
        else:
            headers.append((name, value))
    else:
        if _all_valid(pseudo, headers):
            return pseudo, tuple(headers)
    return _checked_fields(payload, max_headers)


def _all_valid(pseudo: dict[bytes, bytes], headers: list[tuple[bytes, bytes]]) -> bool:
    """Whether every field passes the checks `_checked_fields` makes one by one."""
    if not pseudo and not headers:
        return True
    names = [*pseudo, *(name for name, _ in headers)]
    joined = b"\n".join(names) if pseudo else b"\n" + b"\n".join(names)
    # Each "\n" is one of ours: a name holding one would look like two valid names.
    if joined.count(b"\n") != len(names) - (1 if pseudo else 0):
        return False
    if _NAMES.fullmatch(joined) is None:
        return False
    values = b"".join([*pseudo.values(), *(value for _, value in headers)])
    if _BAD_VALUE.search(values) is not None:
        return False
    return HOP_BY_HOP.isdisjoint(names)


def _checked_fields(payload: bytes, max_headers: int) -> tuple[dict[bytes, bytes], Headers]:
    """`split_fields` field by field: raises for the first field that is wrong."""
    pseudo: dict[bytes, bytes] = {}
    headers: list[tuple[bytes, bytes]] = []
    name_ok, bad_value, hop_by_hop = _NAME.fullmatch, _BAD_VALUE.search, HOP_BY_HOP
    pos, end = 0, len(payload)
    while pos < end:
        size = payload[pos]
        size, pos = (size, pos + 1) if size < 0x40 else _long_length(payload, pos)
        name = payload[pos : pos + size]
        pos += size
        if pos >= end:
            raise ValueError("truncated field length" if pos == end else _PAST_END)
        size = payload[pos]
        size, pos = (size, pos + 1) if size < 0x40 else _long_length(payload, pos)
        value = payload[pos : pos + size]
        pos += size
        if pos > end:
            raise ValueError(_PAST_END)
        if name[:1] == b":":
            if headers or name in pseudo or not name_ok(name, 1) or bad_value(value):
                raise _field_error(name, value, pseudo, headers)
            pseudo[name] = value
        elif not name_ok(name) or name in hop_by_hop or bad_value(value):
            raise _field_error(name, value, pseudo, headers)
        elif len(headers) == max_headers:
            raise HeadTooLargeError(f"more than {max_headers} header fields")
        else:
            headers.append((name, value))
    return pseudo, tuple(headers)


_PAST_END = "field runs past the end of the head"


def _long_length(payload: bytes, pos: int) -> tuple[int, int]:
    decoded = decode_varint(payload, pos)
    if decoded is None:
        raise ValueError("truncated field length")
    return decoded


def _field_error(
    name: bytes, value: bytes, pseudo: dict[bytes, bytes], headers: list[tuple[bytes, bytes]]
) -> ValueError:
    """Why `split_fields` refused a field (the slow path, for the message)."""
    if name[:1] != b":":
        return ValueError(_header_problem(name, value))
    if headers:
        return ValueError(f"pseudo-field {name!r} after a header")
    if name in pseudo:
        return ValueError(f"repeated pseudo-field {name!r}")
    if not _NAME.fullmatch(name, 1):
        return ValueError(f"invalid pseudo-field name {name!r}")
    return ValueError(_value_problem(name))


def _header_problem(name: bytes, value: bytes) -> str | None:
    if not _NAME.fullmatch(name):
        return f"invalid header name {name!r} (lowercase token expected)"
    if name in HOP_BY_HOP:
        return f"hop-by-hop header {name.decode()!r}"
    if _BAD_VALUE.search(value):
        return _value_problem(name)
    return None


def _value_problem(name: bytes) -> str:
    return f"CR, LF or NUL in the value of {name!r}"


def check_header(name: bytes, value: bytes) -> None:
    """Raise ValueError unless `name: value` may cross the tunnel as a regular header."""
    problem = _header_problem(name, value)
    if problem is not None:
        raise ValueError(problem)


def check_headers(headers: Headers, max_headers: int) -> None:
    """Raise HeadTooLargeError for more than `max_headers`, else ValueError for the first
    header `check_header` refuses."""
    if len(headers) > max_headers:
        raise HeadTooLargeError(f"{len(headers)} header fields, more than {max_headers}")
    # From about six headers on (a browser sends ten or more), checking all at once is
    # cheaper; the walk below then only runs to find which one is wrong.
    if len(headers) > _BULK_FROM and _all_valid({}, list(headers)):
        return
    for name, value in headers:
        check_header(name, value)


_BULK_FROM = 5


def content_length(headers: Headers) -> int | None:
    """The body length the `content-length` headers declare, or None without one.

    Raises:
        ValueError: a value that is not 1–19 digits, or repeated headers that disagree.
    """
    found: bytes | None = None
    for name, value in headers:
        if name == b"content-length":
            if not _LENGTH.fullmatch(value):
                raise ValueError(f"invalid content-length {value!r}")
            if found is not None and int(found) != int(value):
                raise ValueError("conflicting content-length headers")
            found = value
    return None if found is None else int(found)


def text(name: bytes, value: bytes, *, empty: bool = False) -> str:
    """A pseudo-field value as UTF-8 text without spaces or ASCII controls; non-empty unless
    `empty`."""
    if not value and not empty:
        raise ValueError(f"empty {name.decode()}")
    if _SPACE_OR_CTL.search(value):
        raise ValueError(f"space or control character in {name.decode()}")
    return value.decode("utf-8")


def method(value: bytes) -> str:
    if not _TOKEN.fullmatch(value):
        raise ValueError(f"invalid method {value!r}")
    return value.decode("ascii")


def target(value: bytes) -> str:
    result = text(b":target", value)
    if result[0] != "/" and result != "*":
        raise ValueError(f"target {result!r} is not origin-form or '*'")
    return result


def client(value: bytes) -> str:
    result = text(b":client", value)
    if _IPV4.fullmatch(value):  # fast path for the common case; same rules as ipaddress
        return result
    if not result.isascii():
        raise ValueError(f"client address {result!r} is not ASCII")
    ipaddress.ip_address(result)  # raises ValueError
    return result


def port(value: bytes) -> int:
    if not _PORT.fullmatch(value) or int(value) > 0xFFFF:
        raise ValueError(f"invalid client port {value!r}")
    return int(value)


def status(value: bytes) -> int:
    if not _STATUS.fullmatch(value):
        raise ValueError(f"invalid status {value!r}")
    return int(value)


def flag(name: bytes, value: bytes) -> bool:
    if value != b"1":
        raise ValueError(f"{name.decode()} must be '1', got {value!r}")
    return True


def one_of(name: bytes, value: bytes, allowed: tuple[str, ...]) -> str:
    result = value.decode("utf-8")
    if result not in allowed:
        raise ValueError(f"{name.decode()} must be one of {allowed}, got {result!r}")
    return result
