"""The input coding and first matrix product of a design with 8-bit inputs, in one pass:
the host's fast path for small nets.

On a small MLP the simulator's time went to coding float inputs (four numpy passes over
the net's largest array) and to the float32 product after it; onnxruntime's float model
reads that array once. Two engines do both steps in one pass here, with exactly the input
type's rounding and saturation (round half to even, then a clamp: AP_RND_CONV with AP_SAT
on a signed type of at most 8 bits), multiplying the codes with the Dense's int8 weights
and summing in int32, which is exact for these sizes (checked per column):
- the compiled kernel (`code_products_u8`, native_int8.cpp), where the CPU has
  8-bit dot products (AVX-512 VNNI): it reads each input once, codes it in registers and
  multiplies the codes while they are in cache. At 2,000 inputs of the zoo's MLP (1,274
  values, 14 outputs, both cores): 0.36 ms, against 0.67-0.84 ms for onnxruntime's call;
- onnxruntime otherwise: QuantizeLinear codes float32 inputs into uint8 in one pass, and
  MatMulInteger multiplies them with int8 weights (1,000 inputs of 1,200 values times 64
  outputs on one thread: 0.43 ms, against 1.8 ms for numpy's coding and float32 product).
  Its graphs are shipped as files (`int8_*.onnx` here, written by
  scripts/make_int8_graphs.py, a test checks them) because building them needs the onnx
  package, which the base install does not have. onnxruntime is imported only here.

Without either (the board), or for float64 inputs and designs this does not fit, the numpy
path runs. Every result is checked against the integer path by tests/test_sim_int8.py.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..ir.design import Design
from . import native
from .exact import Matrix
from .fixed import FixedType, _check_range
from .native import LANES, finish_operands, finished
from .tensor import Tensor

GRAPHS = Path(__file__).parent
_SESSIONS: dict[tuple[str, int], object] = {}
_LOCK = threading.Lock()


@dataclass(frozen=True)
class Int8Plan:
    """How a design's input coding and first Dense product run on onnxruntime."""

    dense: str             # the Dense layer whose product is computed here
    type: FixedType        # the input type (and every layer's up to the Dense)
    weights: np.ndarray    # (n_in, n_out) int8 codes, the Dense's matrix
    graph: str             # file name in GRAPHS
    feed: dict             # scale, zero point (and clip bounds) for the graph
    packed: tuple | None   # the weights laid out for the compiled kernel (u8_weights), when it runs


def has_u8() -> bool:
    """Whether the compiled 8-bit coding and product (native_int8.cpp) runs here: the kernel
    is built and the CPU has 8-bit dot products (AVX-512 VNNI)."""
    lib = native.library()
    return lib is not None and bool(lib.has_u8())


def u8_weights(weights: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """int8 weights (n_in, n_out) laid out for code_products_u8: (ceil(n_in / 4), padded, 4),
    four rows of a column in one 32-bit lane, zeros past n_in and n_out; and 128 times each
    column's sum (int32, padded), which takes the unsigned codes' offset back out."""
    span, n_out = weights.shape
    padded, quads = -(-n_out // LANES) * LANES, -(-span // 4)
    w = np.zeros((4 * quads, padded), np.int8)
    w[:span, :n_out] = weights
    correction = np.zeros(padded, np.int32)
    correction[:n_out] = 128 * weights.astype(np.int64).sum(axis=0)
    return np.ascontiguousarray(w.reshape(quads, 4, padded).transpose(0, 2, 1)), correction


def code_products_u8(x: np.ndarray, t: FixedType, packed: tuple[np.ndarray, np.ndarray], n_out: int, threads: int,
                     finish: list[tuple] | None = None, keep_codes: bool = True) -> tuple:
    """float32 inputs (batch, n_in) coded into t (rounded half to even, clamped; a signed
    type of at most 8 bits) and multiplied by the weights `packed` by u8_weights, on up to
    `threads` threads: (int8 codes (batch, n_in), the products, the smallest code, the
    largest). NaN, Inf and huge values come out at a clamp: the caller checks the inputs
    when a bound reaches one. Without `keep_codes` the codes are not stored (None).

    The products are int32 (batch, n_out). With `finish` they are finished in the same
    pass: finish[0] is (the Dense layer's cache, its float plan, what runs after it), and
    each further item (a Dense layer's cache, its Matrix, float plan, After) is a Dense
    layer run next on each block of rows while it is in cache. The second item is then
    (the last layer's codes in float64, the edge counts of every layer run, in order), or
    None when a cast would wrap."""
    w, correction = packed
    x = np.ascontiguousarray(x, dtype=np.float32)
    n, span = x.shape
    codes = np.empty((n, span), np.int8) if keep_codes else None
    bounds = np.empty(2, np.int64)
    if finish is None:
        out = np.empty((n, n_out), np.int32)
        tail = (out.ctypes.data, bounds.ctypes.data, None, None, None, None, 0, None, None, None, None)
    else:
        cache, plan, after = finish[0]
        dims, ptrs, width = [], [], n_out
        for stage_cache, m, stage_plan, stage_after in finish[1:]:
            weights = _f64_weights(stage_cache, m)
            dims += [m.f64.shape[0], m.f64.shape[1], weights.shape[1]]
            ptrs += [weights.ctypes.data, *finish_operands(stage_cache, stage_plan, stage_after, m.f64.shape[1])]
            width = m.f64.shape[1]
        dims, ptrs = np.array(dims, np.int64), np.array([p or 0 for p in ptrs], np.uint64)
        out, stats = np.empty((n, width)), np.empty(9 * len(finish))
        tail = (None, bounds.ctypes.data, *finish_operands(cache, plan, after, n_out), len(finish) - 1,
                dims.ctypes.data, ptrs.ctypes.data, out.ctypes.data, stats.ctypes.data)
    native.library().code_products_u8(x.ctypes.data, n, span, 2.0 ** t.fractional, t.min_code, t.max_code,
                                      w.ctypes.data, n_out, w.shape[1], correction.ctypes.data, threads,
                                      codes.ctypes.data if keep_codes else None, *tail)
    lo, hi = int(bounds[0]), int(bounds[1])
    if finish is None:
        return codes, out, lo, hi
    edges = []
    for k, item in enumerate(finish):  # item[-2:]: the layer's float plan and what runs after it
        done = finished(out, stats[9 * k:9 * k + 9], item[-2], item[-1])
        if done is None:
            return codes, None, lo, hi
        edges += done[1]
    return codes, (out, edges), lo, hi


def _f64_weights(cache: dict, m: Matrix) -> np.ndarray:
    """m's float64 weights (rows, columns padded to a multiple of LANES), made once (kept in
    the layer's cache)."""
    key = ("native-f64", id(m))
    kept = cache.get(key)
    if kept is None or kept[0] is not m:
        w = np.zeros((m.f64.shape[0], -(-m.f64.shape[1] // LANES) * LANES))
        w[:, :m.f64.shape[1]] = m.f64
        kept = cache[key] = (m, w)
    return kept[1]


def _session(graph: str, threads: int):
    """One onnxruntime session per graph and number of threads, made once. Its threads do
    not spin after a call: the simulator's numpy work follows at once on the same cores."""
    with _LOCK:
        if (graph, threads) not in _SESSIONS:
            import onnxruntime as ort
            options = ort.SessionOptions()
            options.intra_op_num_threads, options.inter_op_num_threads = threads, 1
            options.add_session_config_entry("session.intra_op.allow_spinning", "0")
            _SESSIONS[graph, threads] = ort.InferenceSession(str(GRAPHS / graph), options,
                                                             providers=["CPUExecutionProvider"])
        return _SESSIONS[graph, threads]


def _available() -> bool:
    """The compiled kernel runs here, or onnxruntime is installed (the host's base install
    has it; a board does not) and the graphs are here (a bundle carries the simulator's
    Python files only)."""
    if has_u8():
        return True
    try:
        import onnxruntime  # noqa: F401
    except ImportError:
        return False
    return all((GRAPHS / name).is_file() for name in ("int8_quantize_matmul.onnx", "int8_quantize_clip_matmul.onnx"))


def plan_for(design: Design, matrix_of) -> Int8Plan | None:
    """The plan of a design whose input is coded AP_RND_CONV with AP_SAT into a signed type
    of at most 8 bits and goes, through Reshapes of the same type that nothing else reads, to a
    Dense whose weight codes fit int8; None otherwise (or with neither engine). Made once
    per design. matrix_of(layer, in_type) gives the Dense's weights (`kernels.dense_matrix`)."""
    key = "_int8_plan"
    if key not in design.cache:
        design.cache[key] = _make_plan(design, matrix_of) if _available() else None
    return design.cache[key]


def _make_plan(design: Design, matrix_of) -> Int8Plan | None:
    t = design.input_type
    # the cases tested against the integer path (convert's input types); unsigned and
    # symmetric types would need only other clip bounds, but nothing makes them yet
    if t.width > 8 or not t.signed or t.rounding != "AP_RND_CONV" or t.saturation != "AP_SAT":
        return None
    if abs(t.fractional) > 100:  # 2**F must be a float32 (every type convert makes is far inside)
        return None
    layers = design.layers
    if not layers or layers[0].class_name not in ("Input", "InputLayer"):
        return None
    readers: dict[str, int] = {}
    for layer in layers:
        for name in layer.inputs:
            readers[name] = readers.get(name, 0) + 1
    prev = layers[0]
    for layer in layers[1:]:
        if any(readers.get(o, 0) != 1 for o in prev.outputs) or layer.inputs[:1] != prev.outputs[:1]:
            return None  # the input (or a reshape of it) is read elsewhere, or the chain breaks
        if layer.class_name == "Reshape" and layer.result_type() == t:
            prev = layer
            continue
        if layer.class_name != "Dense":
            return None
        m = matrix_of(layer, t)
        if m is None or m.codes.min(initial=0) < -128 or m.codes.max(initial=0) > 127:
            return None
        if 128 * m.col_bound >= 2 ** 31:  # int32 sums stay exact
            return None
        # uint8 codes with a zero point of 128: the CPU's int8 dot products take unsigned
        # times signed (int8 times int8 ran 12x slower here)
        feed = {"scale": np.array(2.0 ** -t.fractional, np.float32), "zero": np.array(128, np.uint8)}
        graph = "int8_quantize_matmul.onnx"
        if t.width < 8:
            graph = "int8_quantize_clip_matmul.onnx"
            feed.update(lowest=np.array(t.min_code + 128, np.uint8), highest=np.array(t.max_code + 128, np.uint8))
        weights = np.ascontiguousarray(m.codes, dtype=np.int8)
        packed = u8_weights(weights) if has_u8() else None
        return Int8Plan(layer.name, t, weights, graph, feed, packed)
    return None


def code_and_multiply(design: Design, plan: Int8Plan, x: np.ndarray, threads: int = 1,
                      finish: list[tuple] | None = None) -> tuple[Tensor, object]:
    """float32 inputs in the ONNX layout -> (the input Tensor, int8 codes in the design's
    input shape, with their count at the type's edges; the Dense's product of those codes,
    int32 (batch, n_out)), on `threads` threads: on the compiled kernel where the plan has
    its weights (`packed`), else on onnxruntime.

    With `finish` (for the compiled kernel only: the Dense layer's finish and the Dense
    layers run after it, `code_products_u8`) the kernel finishes the products in
    the same pass and the second item is (the last layer's codes in float64, the edge
    counts of every layer run). The input codes are then not kept: the Tensor holds zeros,
    as every layer that reads them (the Reshapes and the Dense, `plan_for`) has run. Where a code sits at the type's edges (to be counted)
    or a cast would wrap (the Dense runs on its own), the pass runs again without it.

    Raises FixedPointError for NaN, Inf or values too large to code exactly, as the numpy
    coding does: both engines saturate them, so the inputs are checked whenever a code
    sits at the type's clamp."""
    t = plan.type
    flat = np.ascontiguousarray(x.reshape(len(x), -1), dtype=np.float32)
    shape = (len(x),) + design.input_shape
    if plan.packed is not None and finish is not None:
        _, product, lo, hi = code_products_u8(flat, t, plan.packed, plan.weights.shape[1], threads, finish,
                                                     keep_codes=False)
        if product is not None and t.min_code < lo and hi < t.max_code:
            return Tensor(np.broadcast_to(np.int8(0), shape), t, 0), product
    if plan.packed is not None:
        codes, product, lo, hi = code_products_u8(flat, t, plan.packed, plan.weights.shape[1], threads)
    else:
        codes, product = _session(plan.graph, threads).run(None, {"x": flat, "weights": plan.weights, **plan.feed})
        # uint8 code + 128 -> the signed code: flip the top bit (in place: a new array's
        # first touch costs 3x the pass) and read the bytes as int8
        np.bitwise_xor(codes, np.uint8(0x80), out=codes)
        codes = codes.view(np.int8)
        # extremes after the flip, while the codes are in this core's cache (read first,
        # they cost 3x: onnxruntime's threads wrote them)
        lo, hi = (int(codes.min()), int(codes.max())) if codes.size else (0, 0)
    if lo == t.min_code or hi == t.max_code:
        _check_range(flat, t)  # NaN, Inf or too large: raise as the numpy coding does
    edges = 0
    if hi == t.max_code:
        edges += int(np.count_nonzero(codes == t.max_code))
    if lo == t.min_code:
        edges += int(np.count_nonzero(codes == t.min_code))
    return Tensor(codes.reshape(shape), t, edges), product
