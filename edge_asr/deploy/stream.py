"""The AXI-stream word format of hls4ml's VivadoAccelerator designs (axi_stream interface).

One scalar per beat. hls4ml rounds the stream type's width up to whole bytes and keeps
its integer bits (`_next_factor8_type`): ap_fixed<12,4> travels as ap_fixed<16,4>, so
the beat holds the same value with 4 more fractional bits, i.e. the code shifted left by
4, in two's complement, little-endian. The DMA marks the last beat of each transfer with
TLAST. pack/unpack take and return codes of the design's own (unrounded) type. These functions turn integer codes into the bytes the DMA sends and back.
"""

from __future__ import annotations

import numpy as np

from ..errors import EdgeAsrError


class StreamFormatError(EdgeAsrError, ValueError):
    """Codes or bytes that are not a valid AXI-stream word sequence of the given type."""


def beat_bytes(width: int) -> int:
    """Bytes per beat: the type width rounded up to whole bytes (hls4ml's _next_factor8_type)."""
    if not 1 <= width <= 64:
        raise StreamFormatError(f"width {width} outside 1..64")
    return (width + 7) // 8


def pack(codes: np.ndarray, width: int, signed: bool) -> bytes:
    """Codes of a `width`-bit type -> little-endian beats of beat_bytes(width) bytes each."""
    codes = np.asarray(codes, dtype=np.int64).reshape(-1)
    lo, hi = (-(1 << (width - 1)), (1 << (width - 1)) - 1) if signed else (0, (1 << width) - 1)
    if codes.size and (codes.min() < lo or codes.max() > hi):
        raise StreamFormatError(f"codes outside the {'signed' if signed else 'unsigned'} {width}-bit range")
    nb = beat_bytes(width)
    shifted = codes << (8 * nb - width)  # same value in the byte-rounded stream type
    raw = shifted.astype("<i8").view(np.uint8).reshape(-1, 8)  # two's complement, little-endian
    return raw[:, :nb].tobytes()


def unpack(data: bytes | np.ndarray, width: int, signed: bool, count: int | None = None) -> np.ndarray:
    """Little-endian beats -> codes of the `width`-bit type (the stream type's extra
    fractional bits must be zero: the design's output type never sets them)."""
    nb = beat_bytes(width)
    buf = np.frombuffer(bytes(data), dtype=np.uint8) if not isinstance(data, np.ndarray) else data.view(np.uint8)
    if buf.size % nb:
        raise StreamFormatError(f"{buf.size} bytes is not a whole number of {nb}-byte beats")
    beats = buf.reshape(-1, nb)
    if count is not None:
        if count > len(beats):
            raise StreamFormatError(f"expected {count} beats, got {len(beats)}")
        beats = beats[:count]
    wide = np.zeros((len(beats), 8), np.uint8)
    wide[:, :nb] = beats
    codes = wide.view("<u8").reshape(-1).astype(np.int64)
    sw = 8 * nb
    if signed and sw < 64:
        codes = np.where(codes >= (1 << (sw - 1)), codes - (1 << sw), codes)
    extra = sw - width
    if extra and np.any(codes & ((1 << extra) - 1)):
        raise StreamFormatError(f"stream words carry bits below the {width}-bit type's lsb")
    return codes >> extra
