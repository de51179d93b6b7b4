"""QUIC variable-length integers (RFC 9000 §16), the only integer encoding on the wire.

The two high bits of the first byte give the length (00 → 1, 01 → 2, 10 → 4, 11 → 8 bytes);
the remaining 6, 14, 30 or 62 bits are the value, big-endian. Encoders use the shortest form;
decoders accept any form (RFC 9000 does not require the minimal one and neither do we).
"""

from __future__ import annotations

MAX_VARINT = (1 << 62) - 1

# Value masks by encoded length: strip the two length bits.
_MASKS = {2: 0x3FFF, 4: 0x3FFF_FFFF, 8: 0x3FFF_FFFF_FFFF_FFFF}


def encode_varint(value: int) -> bytes:
    """Encode `value` in the shortest form.

    Raises:
        ValueError: `value` is negative or above 2**62 - 1.
    """
    if 0 <= value < 0x40:
        return bytes((value,))
    if 0x40 <= value < 0x4000:
        return (value | 0x4000).to_bytes(2, "big")
    if 0x4000 <= value < 0x4000_0000:
        return (value | 0x8000_0000).to_bytes(4, "big")
    if 0x4000_0000 <= value <= MAX_VARINT:
        return (value | 0xC000_0000_0000_0000).to_bytes(8, "big")
    raise ValueError(f"varint out of range: {value}")


def decode_varint(data: bytes | bytearray | memoryview, pos: int) -> tuple[int, int] | None:
    """Decode the varint that starts at `data[pos]`.

    Returns:
        `(value, position after it)`, or None if `data` ends before the varint does.
    """
    if pos >= len(data):
        return None
    first = data[pos]
    size = 1 << (first >> 6)
    if size == 1:
        return first, pos + 1
    end = pos + size
    if end > len(data):
        return None
    return int.from_bytes(data[pos:end], "big") & _MASKS[size], end
