"""The input coding and first matrix product of a design with 8-bit inputs, in one pass:
the host's fast path for small nets.

On a small MLP the simulator's time went to coding float inputs (four numpy passes over
the net's largest array) and to the float32 product after it; onnxruntime's float model
reads that array once. Two engines do both steps in one pass here, with exactly the input
type's rounding and saturation (round half to even, then a clamp: AP_RND_CONV with AP_SAT
on a signed type of at most 8 bits), multiplying the codes with the Dense's int8 weights
and summing in int32, which is exact for these sizes (checked per column):
- the compiled kernel (`native.code_products_u8`, native_int8.cpp), where the CPU has
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
from .fixed import FixedType, _check_range
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
    packed: tuple | None   # the weights laid out for the compiled kernel (native.u8_weights), when it runs


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
    if native.has_u8():
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
        packed = native.u8_weights(weights) if native.has_u8() else None
        return Int8Plan(layer.name, t, weights, graph, feed, packed)
    return None


def code_and_multiply(design: Design, plan: Int8Plan, x: np.ndarray, threads: int = 1,
                      finish: list[tuple] | None = None) -> tuple[Tensor, object]:
    """float32 inputs in the ONNX layout -> (the input Tensor, int8 codes in the design's
    input shape, with their count at the type's edges; the Dense's product of those codes,
    int32 (batch, n_out)), on `threads` threads: on the compiled kernel where the plan has
    its weights (`packed`), else on onnxruntime.

    With `finish` (for the compiled kernel only: the Dense layer's finish and the Dense
    layers run after it, `native.code_products_u8`) the kernel finishes the products in
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
        _, product, lo, hi = native.code_products_u8(flat, t, plan.packed, plan.weights.shape[1], threads, finish,
                                                     keep_codes=False)
        if product is not None and t.min_code < lo and hi < t.max_code:
            return Tensor(np.broadcast_to(np.int8(0), shape), t, 0), product
    if plan.packed is not None:
        codes, product, lo, hi = native.code_products_u8(flat, t, plan.packed, plan.weights.shape[1], threads)
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
