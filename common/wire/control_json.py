"""Strict readers for the JSON objects in control frames (see `control.py` for the rules).

Every reader raises `ValueError` with the offending key; `control.py` maps that to a
`ProtocolError` when decoding and lets it through when checking what it is about to encode.
"""

from __future__ import annotations

import json

MAX_INT = (1 << 53) - 1
"""Largest integer in a control message: exact in every JSON implementation (IEEE doubles)."""

MAX_INTERVAL = 3600.0
"""Largest heartbeat interval, in seconds."""

_REQUIRED = object()


def parse(payload: bytes) -> dict[str, object]:
    """Parse a payload into a JSON object.

    Raises:
        ValueError: not UTF-8, not JSON, NaN/Infinity, duplicate keys, or not an object.
        RecursionError: nested absurdly deep.
    """
    obj = json.loads(
        payload.decode("utf-8"), object_pairs_hook=_unique_keys, parse_constant=_no_constant
    )
    if not isinstance(obj, dict):
        raise ValueError("payload is not a JSON object")
    return obj


def _unique_keys(pairs: list[tuple[str, object]]) -> dict[str, object]:
    obj = dict(pairs)
    if len(obj) != len(pairs):
        raise ValueError("duplicate key in a JSON object")
    return obj


def _no_constant(name: str) -> object:
    raise ValueError(f"{name} is not a number")


def _get(obj: dict[str, object], key: str, default: object) -> object:
    value = obj.get(key, default)
    if value is _REQUIRED:
        raise ValueError(f"missing key {key!r}")
    return value


def _check_text(key: str, value: object) -> str:
    if not isinstance(value, str):
        raise ValueError(f"{key!r} must be a string")
    value.encode("utf-8")  # a lone surrogate (from a \\ud800 escape) raises UnicodeEncodeError
    return value


def string(obj: dict[str, object], key: str, default: object = _REQUIRED) -> str:
    return _check_text(key, _get(obj, key, default))


def integer(obj: dict[str, object], key: str, default: object = _REQUIRED) -> int:
    value = _get(obj, key, default)
    if type(value) is not int or not 0 <= value <= MAX_INT:
        raise ValueError(f"{key!r} must be an integer from 0 to 2**53-1")
    return value


def interval(obj: dict[str, object], key: str, default: object = _REQUIRED) -> float:
    value = _get(obj, key, default)
    # Compare before converting: float() of a huge JSON integer would overflow. NaN fails.
    if type(value) not in (int, float) or not 0 < value <= MAX_INTERVAL:  # type: ignore[operator]
        raise ValueError(f"{key!r} must be a number above 0 and at most {MAX_INTERVAL:g}")
    return float(value)  # type: ignore[arg-type]


def strings(obj: dict[str, object], key: str) -> tuple[str, ...]:
    value = _get(obj, key, _REQUIRED)
    if not isinstance(value, list):
        raise ValueError(f"{key!r} must be a list of strings")
    return tuple(_check_text(key, item) for item in value)


def string_map(obj: dict[str, object], key: str) -> tuple[tuple[str, str], ...]:
    """An optional object of string values, as pairs in document order."""
    value = _get(obj, key, {})
    if not isinstance(value, dict):
        raise ValueError(f"{key!r} must be an object of strings")
    return tuple((_check_text(key, name), _check_text(key, item)) for name, item in value.items())
