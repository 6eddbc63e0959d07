"""AXI-stream packing: round trips for every width 2-32 and both signednesses."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from edge_asr.deploy.stream import beat_bytes, pack, unpack


@st.composite
def codes_of_a_type(draw):
    width = draw(st.integers(2, 32))
    signed = draw(st.booleans())
    lo, hi = (-(1 << (width - 1)), (1 << (width - 1)) - 1) if signed else (0, (1 << width) - 1)
    values = draw(st.lists(st.integers(lo, hi), min_size=1, max_size=64))
    return width, signed, np.array(values + [lo, hi], dtype=np.int64)


@settings(max_examples=400, deadline=None)
@given(codes_of_a_type())
def test_round_trip(case):
    width, signed, codes = case
    data = pack(codes, width, signed)
    assert len(data) == codes.size * beat_bytes(width)
    assert np.array_equal(unpack(data, width, signed), codes)


def test_layout_is_little_endian_twos_complement():
    # a 12-bit type travels as the 16-bit type with the same integer bits: code << 4
    assert pack(np.array([-2]), 12, True) == bytes([0xE0, 0xFF])
    assert pack(np.array([0x1234]), 16, False) == bytes([0x34, 0x12])
    assert pack(np.array([-1]), 20, True) == bytes([0xF0, 0xFF, 0xFF])
    assert pack(np.array([0x0FFF]), 12, False) == bytes([0xF0, 0xFF])
    assert unpack(bytes([0xE0, 0xFF]), 12, True)[0] == -2


def test_errors():
    with pytest.raises(ValueError, match="range"):
        pack(np.array([8]), 4, True)
    with pytest.raises(ValueError, match="whole number"):
        unpack(b"\x00\x01\x02", 16, True)
    with pytest.raises(ValueError, match="below"):
        unpack(bytes([0xE1, 0xFF]), 12, True)
    with pytest.raises(ValueError, match="expected 3 beats"):
        unpack(b"\x00\x01", 16, True, count=3)
