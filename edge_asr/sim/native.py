"""The Dense/Conv1D arithmetic fused in one compiled pass (native.cpp), built for this host.

Why our own kernel: exact products of 16-bit codes need float64 (or int64) on numpy,
which runs them on BLAS and then makes five or six more passes over each layer's output
(bias, scaling, rounding, clip, bounds): on a small 16-bit conv net those passes and
BLAS's handling of a 16-column product took 2.8-4.5x onnxruntime's time for the float
model. onnxruntime has no float64 or 16-bit integer convolution (ConvInteger takes 8 bits
and took 5-12 ms here, docs/experiments.md), and no kept library fuses the cast.
native.cpp makes each output's product, bias, scaling, rounding, clip and edge count in
registers, and in the same pass the ApplyAlpha and the ReLU after the layer (`After`,
sim/fused.py; the finish is native_finish.h): on the CPU's 16-bit dot products (AVX-512)
when codes and weights fit int16, summed in int32 over blocks of rows that cannot reach
2**31 (`_int32_blocks`), else in float64. `affine_finish` runs the same finish on an
ApplyAlpha alone or on products made elsewhere. native_int8.cpp codes 8-bit inputs and
makes the first product on the CPU's 8-bit dot products (`code_products_u8`, sim/int8.py),
then the Dense layers after it. Measured at 2,000 inputs in benchmarks/sim_speed.py
(docs/experiments.md, fourth and fifth rounds).

It is built with g++ on first use into $EDGE_ASR_CACHE/sim-native/<key>/ (the key covers
the sources, the flags, the compiler and this CPU's flags: it is built for this CPU), and
loaded through ctypes, which lets go of the GIL so the simulator's passes overlap. Without
g++, when the build fails, or with EDGE_ASR_SIM_NATIVE=0, `available()` is False and
the numpy path runs: the codes are the same (tests/test_sim_native.py and
tests/test_sim_fused.py hold them to the integer path). A board bundle carries no .cpp,
so the board runs numpy.
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
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..resources import cache_root
from .exact import FloatPlan, Matrix, cast_bounds, max_abs_code, product_dtype
from .fixed import FixedType

SOURCES = [Path(__file__).with_name(name) for name in ("native.cpp", "native_int8.cpp")]  # compiled
HEADERS = [Path(__file__).with_name("native_finish.h")]  # included by both
LANES = 16  # native.cpp's kLanes: the weights' columns are padded to a multiple of it
MODES = {"AP_RND_CONV": 0, "AP_RND": 1, "AP_TRN": 2}
_LOCK = threading.Lock()
_LIBRARY: list = []  # [the loaded library, or None when it cannot be had], once tried


def _flags() -> list[str]:
    # -O2: gcc 12's -O3 vectorizes the block's row loop instead of its lanes, 10x slower here
    flags = ["-O2", "-march=native", "-shared", "-fPIC", "-std=c++17", "-pthread"]
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
    texts = [source.read_text() for source in SOURCES + HEADERS]
    key = hashlib.sha256("\0".join([*texts, " ".join(_flags()), version, _cpu_id()]).encode())
    folder = cache_root() / "sim-native" / key.hexdigest()[:16]
    lib = folder / "native.so"
    if lib.is_file():
        return lib
    folder.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(suffix=".so", dir=folder)
    os.close(fd)
    try:
        subprocess.run([compiler, *_flags(), "-o", tmp, *map(str, SOURCES)], capture_output=True, text=True,
                       check=True, timeout=300)
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
            wanted = os.environ.get("EDGE_ASR_SIM_NATIVE", "1") != "0"
            if wanted and all(source.is_file() for source in SOURCES + HEADERS) and shutil.which(compiler):
                try:
                    lib = ctypes.CDLL(str(_build(compiler)))
                except (OSError, subprocess.SubprocessError):
                    lib = None  # the numpy path gives the same codes, only slower
            if lib is not None:
                p, i = ctypes.c_void_p, ctypes.c_long
                lib.window_products.argtypes = [p, i, i, i, i, i, p, i, i, p, p, p, p, p, p]
                lib.window_products.restype = None
                lib.window_products_i16.argtypes = [p, i, i, i, i, p, i, p, i, i, p, p, p, p, p, p]
                lib.window_products_i16.restype = None
                lib.has_i16.restype = ctypes.c_int
                lib.has_u8.restype = ctypes.c_int
                for name in ("affine_f64", "affine_i32"):
                    getattr(lib, name).argtypes = [p, i, i, p, p, p, p, p, p, p]
                    getattr(lib, name).restype = None
                lib.code_products_u8.argtypes = [p, i, i, ctypes.c_float, ctypes.c_int, ctypes.c_int, p, i, i, p,
                                                 ctypes.c_int, p, p, p, p, p, p, p, i, p, p, p, p]
                lib.code_products_u8.restype = None
            _LIBRARY.append(lib)
        return _LIBRARY[0]


def available() -> bool:
    """Whether the compiled kernel is here (built on the first call)."""
    return _library() is not None


def library():
    """The compiled library loaded through ctypes (built on the first call), or None."""
    return _library()


@dataclass(frozen=True, eq=False)
class After:
    """What the compiled finish runs after a layer's own cast, in the same pass: an
    elementwise layer's cast (nnet::normalize: `alpha`, its cast_plan over the output
    lanes, with `scale` per lane or None for 1) and a ReLU (`relu`, its result type, a
    clip: `fuses_relu`); either, both or neither."""

    alpha: FloatPlan | None = None
    scale: np.ndarray | None = None
    relu: FixedType | None = None


NOTHING = After()


def _operands(cache: dict, m: Matrix, x_type: FixedType):
    """What the kernel multiplies, made once per layer and input type (kept in the layer's
    cache): ("i16", int16 weights (pairs of rows, padded columns, 2), the blocks' ends in
    pairs) or ("f64", float64 weights (rows, padded columns), None)."""
    key = ("native", x_type)
    if key not in cache:
        span, n_out = m.f64.shape
        padded = -(-n_out // LANES) * LANES
        cuts = _int32_blocks(m, x_type) if _library().has_i16() else None
        if cuts is not None:
            pairs = -(-span // 2)
            w = np.zeros((2 * pairs, padded), np.int16)
            w[:span, :n_out] = m.codes
            cache[key] = ("i16", np.ascontiguousarray(w.reshape(pairs, 2, padded).transpose(0, 2, 1)), cuts)
        else:
            w = np.zeros((span, padded))
            w[:, :n_out] = m.f64
            cache[key] = ("f64", w, None)
    return cache[key]


def layer_products(cache: dict, x_type: FixedType, m: Matrix, plan: FloatPlan | None, x: np.ndarray, k: int,
                   stride: int, out_w: int, after: After = NOTHING) -> tuple[np.ndarray, list[int]] | None:
    """A Dense/Conv1D layer's window_products where this kernel is the fast path (float64
    products; float32 ones only on the 16-bit kernel: the float64 one is no faster than
    BLAS there), else None. cache: the layer's."""
    if plan is None or not available():
        return None
    if product_dtype(m, x_type) is np.float32 and _operands(cache, m, x_type)[0] != "i16":
        return None
    return window_products(x, x_type, k, stride, out_w, m, plan, cache, after)


def fuses_relu(res_t: FixedType, relu_t: FixedType) -> bool:
    """Whether a ReLU with result type relu_t after a cast to res_t is a clip the kernel can
    make: max(code, 0) on the same grid, then the recast (kernels.recast) is nothing or a
    saturating clip to relu_t's largest code (codes >= 0 are at or above its lowest)."""
    if res_t.fractional != relu_t.fractional or relu_t.lowest_code > 0:
        return False
    return res_t.max_code <= relu_t.max_code or relu_t.saturation in ("AP_SAT", "AP_SAT_SYM")


def _int32_blocks(m: Matrix, x_type: FixedType) -> np.ndarray | None:
    """The ends (in pairs of rows) of blocks of m's rows whose products with codes of
    x_type sum below 2**31 in every column, whatever the codes (the int32 sums of the
    16-bit kernel are then exact); None when codes or weights do not fit int16 or a single
    pair can reach 2**31."""
    limit = 2 ** 31 - 1
    if x_type.min_code < -2 ** 15 or x_type.max_code >= 2 ** 15:
        return None
    if m.codes.size == 0 or m.codes.min() < -2 ** 15 or m.codes.max() >= 2 ** 15:
        return None
    x_max = max_abs_code(x_type)
    magnitudes = np.abs(m.codes)
    if len(magnitudes) % 2:
        magnitudes = np.vstack([magnitudes, np.zeros((1, magnitudes.shape[1]), np.int64)])
    pair_sums = magnitudes[0::2] + magnitudes[1::2]  # (pairs, n_out)
    if x_max * pair_sums.max() > limit:
        return None
    ends, running = [], np.zeros(pair_sums.shape[1], np.int64)
    for i, pair in enumerate(pair_sums):
        if x_max * (running + pair).max() > limit:
            ends.append(i)
            running[:] = 0
        running += pair
    ends.append(len(pair_sums))
    return np.array(ends, np.int64)


def window_products(x: np.ndarray, x_type: FixedType, k: int, stride: int, out_w: int, m: Matrix, plan: FloatPlan,
                    cache: dict, after: After = NOTHING) -> tuple[np.ndarray, list[int]] | None:
    """What `finish_float` gives for the product of every window of x with m, in one pass,
    with the count of results at the type's edges; and what the layers in `after` give of
    them.

    x: (N, pixels, channels) codes of x_type; output t of input i is the window of k
    pixels from pixel t * stride, every channel, in [pixel][channel] order (m's rows). A
    Dense is one window of one pixel. Codes and weights that fit int16 run on the CPU's
    16-bit dot products where it has them, else in float64. Returns ((N * out_w, n_out)
    codes in float64: the last layer's; the edge counts of the layer, then of each layer
    of `after` that runs), or None when the accumulator or a wrapping result type would
    wrap (then the integer path runs), as finish_float does."""
    lib = _library()
    n, pixels, channels = x.shape
    span, n_out = m.f64.shape
    if span != k * channels or (out_w - 1) * stride + k > pixels:
        raise ValueError(f"windows of {k} x {channels} at stride {stride} do not fit {pixels} pixels, {span} weights")
    kind, w, cuts = _operands(cache, m, x_type)
    out = np.empty((n * out_w, n_out))
    stats = np.empty(9)
    finish = (*finish_operands(cache, plan, after, n_out), out.ctypes.data, stats.ctypes.data)
    if kind == "i16":
        # one copy, that makes the windows contiguous, plus one code: an odd window's last
        # pair reads one past it (times a zero weight)
        codes = np.empty(x.size + 1, np.int16)
        codes[-1] = 0
        np.copyto(codes[:-1].reshape(x.shape), x, casting="unsafe")  # integers of an int16 range: exact
        lib.window_products_i16(codes.ctypes.data, n, out_w, pixels * channels, stride * channels, cuts.ctypes.data,
                                len(cuts), w.ctypes.data, n_out, w.shape[1], *finish)
    else:
        # one copy at most, that casts and makes the windows contiguous (a Transpose's view)
        x = np.ascontiguousarray(x, dtype=np.float64)
        lib.window_products(x.ctypes.data, n, out_w, pixels * channels, stride * channels, span, w.ctypes.data, n_out,
                            w.shape[1], *finish)
    return finished(out, stats, plan, after)


def affine_finish(x: np.ndarray, scale: np.ndarray | None, plan: FloatPlan, cache: dict,
                  after: After = NOTHING) -> tuple[np.ndarray, list[int]] | None:
    """What `finish_float` gives for x * scale (scale per column, None for 1), in one pass,
    and what the layers in `after` give of it: an elementwise layer's cast (ApplyAlpha,
    plan from `cast_plan`) or a Dense's product made elsewhere (int32, sim/int8.py; plan
    from `float_plan`). x: (n, cols) float64 codes or int32 products. Returns as
    window_products, or None without the compiled kernel or when a wrap shows."""
    if not available() or x.ndim != 2 or x.dtype not in (np.float64, np.int32):
        return None
    lib = _library()
    n, cols = x.shape
    x = np.ascontiguousarray(x)
    out = np.empty((n, cols))
    stats = np.empty(9)
    if scale is not None:
        scale = np.ascontiguousarray(scale, np.float64)  # (no copy: alpha_cast's scale is so already)
    kernel = lib.affine_f64 if x.dtype == np.float64 else lib.affine_i32
    kernel(x.ctypes.data, n, cols, None if scale is None else scale.ctypes.data, *finish_operands(cache, plan, after, cols),
           out.ctypes.data, stats.ctypes.data)
    return finished(out, stats, plan, after)


def _cast_params(plan: FloatPlan) -> list[float]:
    """One cast's parameters for native.cpp's make_finish: the scaling to the result's lsb,
    the rounding mode, the clip's bounds and the type's lower edge (NaN: unsigned)."""
    res_t = plan.res_t
    return [2.0 ** (plan.shift - plan.drop), MODES[res_t.rounding] if plan.drop > 0 else 3, float(res_t.lowest_code),
            float(res_t.max_code), float(res_t.min_code) if res_t.signed else float("nan")]


def _padded(values, lanes: int) -> np.ndarray:
    """values (one per lane, or one for all; None for zeros) in float64, padded with zeros
    to a multiple of LANES."""
    out = np.zeros(-(-lanes // LANES) * LANES)
    if values is not None:
        out[:lanes] = values
    return out


def finish_operands(cache: dict, plan: FloatPlan, after: After, lanes: int) -> tuple:
    """The finish's operands (native.cpp's make_finish: params, bias, scale2, bias2, as
    addresses), made once per plan, `after` and width and kept in the layer's cache with
    the arrays they point into."""
    key = ("native-finish", id(plan), id(after), lanes)
    kept = cache.get(key)
    if kept is None or kept[0] is not plan or kept[1] is not after:
        alpha = after.alpha
        params = np.array(_cast_params(plan) + ([1.0, *_cast_params(alpha)] if alpha is not None else [0.0] * 6)
                          + ([0.0, float(after.relu.max_code)] if after.relu is not None else [-np.inf, np.inf]))
        arrays = (params, _padded(plan.bias, lanes),
                  _padded(after.scale, lanes) if alpha is not None and after.scale is not None else None,
                  _padded(alpha.bias if alpha is not None else None, lanes))
        kept = cache[key] = (plan, after, arrays, tuple(a.ctypes.data if a is not None else None for a in arrays))
    return kept[3]


def finished(out: np.ndarray, stats: np.ndarray, plan: FloatPlan, after: After) -> tuple[np.ndarray, list[int]] | None:
    """(out, the edge counts of the layer and of each layer of `after`), or None when a
    cast's bounds show a wrap (`cast_bounds`): then the layer runs on its own."""
    if cast_bounds(stats[:2], plan) is None:
        return None
    edges = [int(stats[2] + stats[3])]
    if after.alpha is not None:
        if cast_bounds(stats[5:7], after.alpha) is None:
            return None
        edges.append(int(stats[7] + stats[8]))
    if after.relu is not None:
        edges.append(int(stats[4]))
    return out, edges
