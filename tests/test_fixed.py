"""sim/fixed.py against Vivado's ap_fixed (hls4ml's ap_types headers compiled with g++):
every quantization and overflow mode, signed and unsigned, small widths, every value on a
grid four times finer than the target type's lsb and twice its range (so every tie and
every overflow is hit), converted from double and from a wider fixed-point type."""

import shutil
import subprocess
from pathlib import Path

import hls4ml
import numpy as np
import pytest

from edge_asr.sim.fixed import OVERFLOW, QUANTIZATION, FixedType, quantize, requantize

HERE = Path(__file__).parent
AP_TYPES = Path(hls4ml.__file__).parent / "templates" / "vivado" / "ap_types"
SHAPES = [(4, 2), (5, -1), (6, 7), (3, 0)]  # (W, I): I may be negative or exceed W
CASES = [(w, i, s, q, o) for (w, i) in SHAPES for s in (True, False) for q in QUANTIZATION for o in OVERFLOW]


def grid(t: FixedType) -> np.ndarray:
    lsb = 2.0 ** -t.fractional
    span = 2.0 ** (t.integer + 1)
    return np.arange(-span, span + lsb, lsb / 4)


@pytest.fixture(scope="module")
def harness(tmp_path_factory):
    if shutil.which("g++") is None:
        pytest.skip("g++ not installed")
    d = tmp_path_factory.mktemp("fixed")
    lines = [f"run<{w},{i},{'true' if s else 'false'},{q},{o}>(xs);" for (w, i, s, q, o) in CASES]
    (d / "fixed_cases.inc").write_text("\n".join(lines) + "\n")
    exe = d / "harness"
    subprocess.run(["g++", "-O1", "-std=c++14", f"-I{AP_TYPES}", f"-I{d}", str(HERE / "cpp" / "fixed_harness.cpp"),
                    "-o", str(exe)], check=True, capture_output=True)
    return exe


def test_every_mode_matches_ap_fixed(harness):
    # one shared input list: the union of every case's grid
    xs = np.unique(np.concatenate([grid(FixedType(w, i, s)) for (w, i, s, _, _) in CASES]))
    out = subprocess.run([str(harness)], input=" ".join(repr(float(v)) for v in xs), capture_output=True,
                         text=True, check=True).stdout
    codes = np.array(out.split(), dtype=np.int64).reshape(len(CASES), len(xs), 2)
    src_frac = 40 - 0  # a wide exact source: codes at 2**-40 resolution
    for k, (w, i, s, q, o) in enumerate(CASES):
        t = FixedType(w, i, s, q, o)
        ours_double = quantize(xs, t)
        src_t_frac = 40 - (i + 12)
        src = np.round(np.ldexp(xs, src_t_frac)).astype(np.int64)
        ours_fixed = requantize(src, src_t_frac, t)
        bad = np.flatnonzero(ours_double != codes[k, :, 0])
        assert bad.size == 0, f"{t.cpp()} from double: x={xs[bad[:3]]} ours={ours_double[bad[:3]]} ap={codes[k, bad[:3], 0]}"
        bad = np.flatnonzero(ours_fixed != codes[k, :, 1])
        assert bad.size == 0, f"{t.cpp()} from fixed: x={xs[bad[:3]]} ours={ours_fixed[bad[:3]]} ap={codes[k, bad[:3], 1]}"
    assert src_frac == 40


def test_parse_and_spell():
    t = FixedType.parse("fixed<16,6,RND_CONV,SAT>")
    assert t == FixedType(16, 6, True, "AP_RND_CONV", "AP_SAT")
    assert FixedType.parse(t.cpp()) == t
    assert FixedType.parse("ufixed<8,0>") == FixedType(8, 0, False)
    assert FixedType.parse("ap_int<5>") == FixedType(5, 5, True)
    assert FixedType.parse("uint<3>") == FixedType(3, 3, False)
    with pytest.raises(ValueError):
        FixedType.parse("float")
    with pytest.raises(ValueError):
        FixedType(16, 6, rounding="AP_ROUND")


def test_wide_types_and_exactness_bound():
    t = FixedType(64, 40, True, "AP_RND_CONV", "AP_SAT")
    assert quantize(np.array([2.0 ** 20 + 0.5]), t)[0] == (2 ** 20 << 24) + (1 << 23)
    with pytest.raises(ValueError, match="too large"):
        quantize(np.array([2.0 ** 40]), FixedType(64, 10))
    big = FixedType(48, 20)
    codes = np.array([(1 << 46) + 3, -(1 << 46) - 5])
    assert np.array_equal(requantize(codes, 28, big), codes)
