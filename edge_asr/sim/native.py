"""The Dense/Conv1D arithmetic fused in one compiled pass (native.cpp), built for this host.

Why our own kernel: a 16-bit design's products are exact in float64 (or int64) only.
numpy runs them on BLAS, then makes five or six more passes over each layer's output (bias,
scaling, rounding, clip, bounds): on a small 16-bit conv net those passes and BLAS's
handling of a 16-column product took 2-4x onnxruntime's time for the float model.
onnxruntime has no float64 or 16-bit integer convolution (ConvInteger takes 8 bits and took
5-12 ms here, docs/experiments.md), and no kept library fuses the cast. native.cpp does
the product, bias, scaling, rounding and clip of each output in registers.

It is built with g++ on first use into $EDGE_ASR_CACHE/sim-native/<key>/ (the key covers
the source, the flags, the compiler and this CPU's flags: it is built for this CPU), and
loaded through ctypes, which lets go of the GIL so the simulator's passes overlap. Without
g++, when the build fails, or with EDGE_ASR_SIM_NATIVE=0, `available()` is False and
the numpy path runs: the codes are the same (tests/test_sim_native.py holds them to the
integer path). A board bundle carries no .cpp, so the board runs numpy.
"""

from __future__ import annotations

import ctypes
import hashlib
import os
import platform
import shutil
import subprocess
import tempfile
import threading
from pathlib import Path

import numpy as np

from ..resources import cache_root
from .exact import FloatPlan, Matrix, cast_bounds

SOURCE = Path(__file__).with_name("native.cpp")
LANES = 16  # native.cpp's kLanes: the weights' columns are padded to a multiple of it
MODES = {"AP_RND_CONV": 0, "AP_RND": 1, "AP_TRN": 2}
_LOCK = threading.Lock()
_LIBRARY: list = []  # [the loaded library, or None when it cannot be had], once tried


def _flags() -> list[str]:
    # -O2: gcc 12's -O3 vectorizes the block's row loop instead of its lanes, 10x slower here
    flags = ["-O2", "-march=native", "-shared", "-fPIC", "-std=c++17"]
    if platform.machine() in ("x86_64", "AMD64"):
        flags.append("-mprefer-vector-width=512")  # 16 lanes in two registers, not four
    return flags


def _cpu_id() -> str:
    """What -march=native builds for: the CPU's model and flags."""
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return platform.processor() or platform.machine()
    lines = [ln for ln in text.splitlines() if ln.split(":")[0].strip() in ("model name", "flags", "Features")]
    return "\n".join(sorted(set(lines)))


def _build(compiler: str) -> Path:
    """The shared library for this source, compiler and CPU: cached, else compiled into a
    temporary file and renamed into place (a concurrent build leaves one whole file)."""
    version = subprocess.run([compiler, "--version"], capture_output=True, text=True, check=True).stdout
    key = hashlib.sha256("\0".join([SOURCE.read_text(), " ".join(_flags()), version, _cpu_id()]).encode())
    folder = cache_root() / "sim-native" / key.hexdigest()[:16]
    lib = folder / "native.so"
    if lib.is_file():
        return lib
    folder.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(suffix=".so", dir=folder)
    os.close(fd)
    try:
        subprocess.run([compiler, *_flags(), "-o", tmp, str(SOURCE)], capture_output=True, text=True, check=True,
                       timeout=300)
        os.replace(tmp, lib)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return lib


def _library():
    """The loaded kernel, or None (no source, no g++, a failed build, or turned off)."""
    with _LOCK:
        if not _LIBRARY:
            lib = None
            compiler = os.environ.get("CXX", "g++")
            if os.environ.get("EDGE_ASR_SIM_NATIVE", "1") != "0" and SOURCE.is_file() and shutil.which(compiler):
                try:
                    lib = ctypes.CDLL(str(_build(compiler)))
                except (OSError, subprocess.SubprocessError):
                    lib = None  # the numpy path gives the same codes, only slower
            if lib is not None:
                p, i, d = ctypes.c_void_p, ctypes.c_long, ctypes.c_double
                lib.window_products.argtypes = [p, i, i, i, i, i, p, i, i, p, d, ctypes.c_int, d, d, d, p, p]
                lib.window_products.restype = None
            _LIBRARY.append(lib)
        return _LIBRARY[0]


def available() -> bool:
    """Whether the compiled kernel is here (built on the first call)."""
    return _library() is not None


def _operands(cache: dict, m: Matrix, plan: FloatPlan) -> tuple[np.ndarray, np.ndarray]:
    """The weights with their columns padded to a multiple of LANES, and the bias (zeros
    when none) padded alike: made once per layer and plan, kept in the layer's cache."""
    key = ("native", id(plan))
    if key not in cache:
        span, n_out = m.f64.shape
        padded = -(-n_out // LANES) * LANES
        w = np.zeros((span, padded))
        w[:, :n_out] = m.f64
        bias = np.zeros(padded)
        if plan.bias is not None:
            bias[:n_out] = plan.bias
        cache[key] = (w, bias, plan)  # the plan too, so that its id is not reused meanwhile
    return cache[key][:2]


def window_products(x: np.ndarray, k: int, stride: int, out_w: int, m: Matrix, plan: FloatPlan,
                    cache: dict) -> tuple[np.ndarray, int] | None:
    """What `finish_float` gives for the product of every window of x with m, in one pass,
    with the count of results at the type's edges.

    x: (N, pixels, channels) codes; output t of input i is the window of k pixels from
    pixel t * stride, every channel, in [pixel][channel] order (m's rows). A Dense is one
    window of one pixel. Returns ((N * out_w, n_out) result codes in float64, the edge
    count), or None when the accumulator or a wrapping result type would wrap (then the
    integer path runs), as finish_float does."""
    lib = _library()
    # one copy at most, that casts and makes the windows contiguous (a Transpose's view)
    x = np.ascontiguousarray(x, dtype=np.float64)
    n, pixels, channels = x.shape
    span, n_out = m.f64.shape
    if span != k * channels or (out_w - 1) * stride + k > pixels:
        raise ValueError(f"windows of {k} x {channels} at stride {stride} do not fit {pixels} pixels, {span} weights")
    w, bias = _operands(cache, m, plan)
    out = np.empty((n * out_w, n_out))
    stats = np.empty(4)
    res_t = plan.res_t
    mode = MODES[res_t.rounding] if plan.drop > 0 else 3
    lib.window_products(x.ctypes.data, n, out_w, pixels * channels, stride * channels, span, w.ctypes.data, n_out,
                        w.shape[1], bias.ctypes.data, 2.0 ** (plan.shift - plan.drop), mode,
                        float(res_t.lowest_code), float(res_t.max_code),
                        float(res_t.min_code) if res_t.signed else float("nan"), out.ctypes.data, stats.ctypes.data)
    if cast_bounds(stats[:2], plan) is None:
        return None
    return out, int(stats[2] + stats[3])
