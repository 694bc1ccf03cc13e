"""Protobuf wire-format pieces for the fuzz tests: hand-built fields that no generated
message would ever emit (any field number, any wire type, any length)."""

from __future__ import annotations


def varint(n: int) -> bytes:
    """``n`` (non-negative) as a base-128 varint."""
    out = bytearray()
    while True:
        low, n = n & 0x7F, n >> 7
        if not n:
            out.append(low)
            return bytes(out)
        out.append(low | 0x80)


def field_key(number: int, wire_type: int) -> bytes:
    """The key of field ``number`` with ``wire_type``."""
    return varint(number << 3 | wire_type)


def delimited(number: int, payload: bytes) -> bytes:
    """Field ``number`` as a length-delimited field carrying ``payload``."""
    return field_key(number, 2) + varint(len(payload)) + payload
