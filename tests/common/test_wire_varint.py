"""QUIC varints: RFC 9000 examples, boundaries, non-minimal forms, incomplete input."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from common.wire import MAX_VARINT, decode_varint, encode_varint

# RFC 9000 Appendix A.1 sample encodings, plus the edges of each length.
ENCODINGS = [
    (0, "00"),
    (37, "25"),
    (63, "3f"),
    (64, "4040"),
    (15293, "7bbd"),
    (16383, "7fff"),
    (16384, "80004000"),
    (494878333, "9d7f3e7d"),
    (2**30 - 1, "bfffffff"),
    (2**30, "c000000040000000"),
    (151288809941952652, "c2197c5eff14e88c"),
    (MAX_VARINT, "ffffffffffffffff"),
]


@pytest.mark.parametrize(("value", "hex_"), ENCODINGS)
def test_encodes_shortest_form(value: int, hex_: str) -> None:
    assert encode_varint(value).hex() == hex_


@pytest.mark.parametrize(("value", "hex_"), ENCODINGS)
def test_decodes_at_any_offset(value: int, hex_: str) -> None:
    data = b"\xaa\xbb" + bytes.fromhex(hex_) + b"\xcc"
    assert decode_varint(data, 2) == (value, 2 + len(hex_) // 2)
    assert decode_varint(memoryview(data), 2) == (value, 2 + len(hex_) // 2)
    assert decode_varint(bytearray(data), 2) == (value, 2 + len(hex_) // 2)


@pytest.mark.parametrize(
    ("hex_", "value"),
    [("4025", 37), ("80000025", 37), ("c000000000000025", 37), ("4000", 0)],
)
def test_accepts_non_minimal_forms(hex_: str, value: int) -> None:
    # RFC 9000 §16: values need not be encoded on the minimum number of bytes.
    assert decode_varint(bytes.fromhex(hex_), 0) == (value, len(hex_) // 2)


@pytest.mark.parametrize("value", [-1, MAX_VARINT + 1, 2**64])
def test_rejects_out_of_range(value: int) -> None:
    with pytest.raises(ValueError, match="out of range"):
        encode_varint(value)


@pytest.mark.parametrize("hex_", ["", "40", "80", "800000", "c0", "c00000000000"])
def test_incomplete_is_none(hex_: str) -> None:
    assert decode_varint(bytes.fromhex(hex_), 0) is None


def test_position_at_end_is_incomplete() -> None:
    assert decode_varint(b"\x01", 1) is None


@given(st.integers(min_value=0, max_value=MAX_VARINT))
def test_round_trip_and_every_prefix_is_incomplete(value: int) -> None:
    encoded = encode_varint(value)
    assert decode_varint(encoded, 0) == (value, len(encoded))
    assert len(encoded) == 1 << (encoded[0] >> 6)
    for cut in range(len(encoded)):
        assert decode_varint(encoded[:cut], 0) is None
