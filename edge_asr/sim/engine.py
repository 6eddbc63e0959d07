"""Run a design on numpy, bit for bit as hls4ml 1.3's C++ computes it: the scheduler.

Inputs are coded into the design's input type (as the host codes them for the board),
then every layer's kernel (`kernels`) runs in hls4ml's order, batched over inputs. Large
batches are cut into chunks that run on all cores (`Workers`); a single chunk (a
streaming decision) runs with BLAS held to one thread (`blas`).
"""

from __future__ import annotations

import os
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import SimError
from ..ir.design import Design, load_design
from . import fused, int8
from .blas import can_hold_blas, one_blas_thread
from .fixed import FixedType, quantize, quantize_float_bounded, to_float
from .kernels import LAYERS, MERGES, dense_matrix, dense_plan
from .tensor import Tensor

__all__ = ["Design", "SimError", "SimResult", "Tensor", "code_input", "load_design", "simulate",
           "simulate_codes"]


@dataclass
class SimResult:
    """What a simulation gives.

    Attributes:
        outputs: exact output values, float64 (batch, n_out).
        codes: their integer codes, int64.
        output_type: the output's fixed-point type.
        trace: layer name -> output values, when asked for (trace=True).
        saturation: layer name -> how many values sit at the edge of their type (where
            saturation lands).
    """

    outputs: np.ndarray
    codes: np.ndarray
    output_type: FixedType
    trace: dict[str, np.ndarray] | None = None
    saturation: dict[str, int] = field(default_factory=dict)


def _float_inputs(design: Design, x) -> np.ndarray:
    """x as a float array (float32 stays float32: quantize_float codes it in float32),
    checked against the design's input shape (SimError)."""
    x = np.asarray(x)
    if x.dtype.kind != "f":
        x = x.astype(np.float64)
    if tuple(x.shape[1:]) != design.onnx_input_shape:
        raise SimError(f"inputs of shape {list(x.shape[1:])}, the design takes {list(design.onnx_input_shape)}")
    return x


def code_input(design: Design, x: np.ndarray) -> Tensor:
    """Float inputs in the ONNX layout (batch first) -> input codes (the host's coding),
    int64 or float64 holding integers (`Tensor`).

    Raises SimError when the shape is not the design's; FixedPointError for NaN or Inf.
    """
    x = _float_inputs(design, x)
    t = design.input_type
    done = quantize_float_bounded(x, t)  # float codes, what the first matrix product takes
    codes, edges = done if done is not None else (quantize(x, t), None)
    return Tensor(codes.reshape((len(x),) + design.input_shape), t, edges)


def _edge_count(t: Tensor) -> int:
    """Values at the largest code, or at the smallest of a signed type: where saturation
    lands (known without a pass when the kernel's bounds showed none)."""
    if t.edges is not None:
        return t.edges
    if not t.codes.size:
        return 0
    n = int(np.count_nonzero(t.codes == t.type.max_code)) if t.codes.max() >= t.type.max_code else 0
    if t.type.signed and t.codes.min() <= t.type.min_code:
        n += int(np.count_nonzero(t.codes == t.type.min_code))
    return n


# Bytes of the largest array in one pass. Measured on this project's 2-core machine
# (benchmarks/sim_speed.py, 2,000 inputs): each pass costs 0.1-0.2 ms of Python and numpy
# calls whatever its size, so small nets want few large passes (1,000 inputs of a
# 1,200-input MLP: 3.3 ms a call, against 4.0 ms at 334 and 23 ms at 27), while the
# shipped model (6,144 float64 values per input) is best at 84-167 inputs per pass, where
# its temporaries stay in cache (86 ms, against 123 ms at 334).
CHUNK_BYTES = 1 << 23
MIN_CHUNK = 16


def _largest_per_input(design: Design, input_bytes: int = 4) -> int:
    """Bytes per input of the largest array a pass makes: the input codes (float32 for
    float32 inputs, int8 from sim/int8.py: `input_bytes` per value), a layer's output or
    the windows of a strided convolution (float64), computed once per design."""
    key = ("_largest_per_input", input_bytes)
    if key not in design.cache:
        sizes = [input_bytes * int(np.prod(design.input_shape))]
        for layer in design.layers:
            if layer.class_name in ("Input", "InputLayer") or layer.class_name in SAME_CODES:
                continue  # the input itself, or its codes rearranged: counted where they were made
            sizes.append(8 * (int(np.prod(layer.output_shape)) if layer.output_shape else 1))
            a = layer.attributes
            if layer.class_name == "Conv1D" and a.get("stride_width", 1) != 1:
                sizes.append(8 * a["out_width"] * a["filt_width"] * a["n_chan"])
        design.cache[key] = max(sizes)
    return design.cache[key]


def chunk_rows(design: Design, n: int, workers: int, input_bytes: int = 4) -> int:
    """Inputs per pass: as many as keep the largest array near CHUNK_BYTES, at least
    MIN_CHUNK, and split so that the passes share out evenly over the workers."""
    rows = max(MIN_CHUNK, CHUNK_BYTES // _largest_per_input(design, input_bytes))
    if n <= rows:
        return n
    chunks = -(-n // rows)
    if workers > 1:
        chunks = -(-chunks // workers) * workers
    return max(1, -(-n // chunks))


def _workers() -> int:
    """Threads for large batches: $EDGE_ASR_SIM_THREADS, else every core."""
    return max(1, int(os.environ.get("EDGE_ASR_SIM_THREADS", os.cpu_count() or 1)))


class Workers:
    """The simulator's own thread pool, made on first use and remade when the number of
    threads asked for changes. numpy releases the GIL in its kernels, so chunks overlap."""

    def __init__(self):
        self._lock = threading.Lock()
        self._pool: ThreadPoolExecutor | None = None
        self._size = 0

    def map(self, fn, items, size: int) -> list:
        """fn over items on `size` threads, in order; the pool is made (or remade for another size) here."""
        with self._lock:
            if self._pool is None or self._size != size:
                if self._pool is not None:
                    self._pool.shutdown(wait=False)
                self._pool, self._size = ThreadPoolExecutor(size, thread_name_prefix="edge-asr-sim"), size
            pool = self._pool
        return list(pool.map(fn, items))


WORKERS = Workers()


def _run_chunks(design: Design, n: int, make_input, trace: bool, input_bytes: int = 4) -> SimResult:
    """The design on n inputs in passes of chunk_rows inputs; make_input(start, stop) codes
    one pass's inputs (inside the pass, so that the coding runs on all cores too). Passes
    run on all cores with BLAS held to one thread per call meanwhile (threadpoolctl, when
    installed), else the two levels of threads fight over the same cores; a single pass (a
    streaming decision) runs with BLAS held to one thread too (see sim/blas.py)."""
    if n == 0:  # no inputs, no outputs (numpy cannot reshape an empty batch by -1)
        empty = np.zeros((0, design.n_outputs))
        return SimResult(empty, empty.astype(np.int64), design.output_type, {} if trace else None,
                         {layer.name: 0 for layer in design.layers})
    workers = _workers() if can_hold_blas() else 1
    rows = chunk_rows(design, n, workers, input_bytes)
    starts = range(0, n, rows)

    def chunk(i: int) -> SimResult:
        start = make_input(i, min(n, i + rows))  # a Tensor, or (Tensor, {Dense layer: its product})
        return _simulate(design, *start, trace) if isinstance(start, tuple) else _simulate(design, start, None, trace)

    with one_blas_thread():
        if workers == 1 or len(starts) == 1:
            parts = [chunk(i) for i in starts]
        else:
            parts = WORKERS.map(chunk, starts, workers)
    if len(parts) == 1:
        return parts[0]
    first = parts[0]
    return SimResult(
        np.concatenate([p.outputs for p in parts]), np.concatenate([p.codes for p in parts]), first.output_type,
        {k: np.concatenate([p.trace[k] for p in parts]) for k in first.trace} if trace else None,
        {k: sum(p.saturation[k] for p in parts) for k in first.saturation})


def _design(design: Design | str | Path) -> Design:
    return design if isinstance(design, Design) else load_design(design)


def simulate(design: Design | str | Path, x: np.ndarray, trace: bool = False) -> SimResult:
    """Run the design on float inputs.

    Args:
        design: a loaded design, or its folder (loaded and checked here).
        x: inputs, batch first, in the ONNX model's layout (design.onnx_input_shape); each
            value is coded into the input type first, as the host does for the board.
        trace: also return every layer's output values.

    Returns:
        SimResult: outputs, codes, saturation counts (and the trace).

    Raises:
        SimError: a wrong input shape, or a layer kind the simulator does not run.
        FixedPointError: NaN or Inf inputs.
        DesignError, ManifestError: a folder whose design does not load.
    """
    design = _design(design)
    x = _float_inputs(design, x)
    plan = int8.plan_for(design, dense_matrix) if x.dtype == np.float32 and len(x) else None
    if plan is not None:
        # coding and the first product of the whole batch in one call on every core
        # (sim/int8.py; compiled, with the layers after it that the pass can run:
        # `_first_finish`), the other layers in passes as usual. Passes of their own would
        # each hand small numpy calls to the other thread under the GIL: measured on a
        # 1,274 -> 14 -> 14 -> 12 MLP, two threads took 2.6 ms where one took 1.7
        finish = _first_finish(design, plan) if plan.packed is not None and not trace else None
        codes, product = int8.code_and_multiply(design, plan, x, _workers(), finish and finish[0])
        made = _chunk_products(plan.dense, product, finish, len(x))

        def coded(i: int, j: int):
            # the whole batch's edge count holds for a pass of all of it (else: none, or count)
            edges = codes.edges if j - i == len(x) or codes.edges == 0 else None
            return Tensor(codes.codes[i:j], codes.type, edges), made(i, j)
        return _run_chunks(design, len(x), coded, trace, input_bytes=1)
    return _run_chunks(design, len(x), lambda i, j: code_input(design, x[i:j]), trace)


def _first_finish(design: Design, plan: int8.Int8Plan) -> tuple | None:
    """What the compiled 8-bit pass can finish after the first product (not when tracing,
    which keeps each layer's own output): (the finishes for `int8.code_products_u8`, the
    first Dense, every layer run after it, in order): the Dense's ApplyAlpha and ReLU
    (`fused.after`), then each Dense that alone reads the last of those, with its own.
    None where the first Dense has no float plan. Made once per design."""
    key = "_int8_finish"
    if key not in design.cache:
        first = next(lay for lay in design.layers if lay.name == plan.dense)
        float_plan = dense_plan(first, plan.type)
        found = None
        if float_plan is not None:
            chains = fused.chains(design)
            then, ran = fused.after(first, chains.get(first.name, ()), plan.weights.shape[1])
            finishes, run = [(first.cache, float_plan, then)], [*ran]
            last = run[-1] if run else first
            # the Dense layers after it, each on the block of rows the pass holds in cache
            while (nxt := fused.sole_reader(design, last)) is not None and nxt.class_name == "Dense":
                m, nxt_plan = dense_matrix(nxt, last.result_type()), dense_plan(nxt, last.result_type())
                if m is None or nxt_plan is None:
                    break
                then, ran = fused.after(nxt, chains.get(nxt.name, ()), m.f64.shape[1])
                finishes.append((nxt.cache, m, nxt_plan, then))
                run += [nxt, *ran]
                last = run[-1]
            found = (finishes, first, tuple(run))
        design.cache[key] = found
    return design.cache[key]


def _chunk_products(name: str, product, finish: tuple | None, n: int):
    """made(i, j) -> {the first Dense's name: what sim/int8.py made of it for inputs i..j}:
    its int32 product, or its output Tensor when sim/int8.py finished it (`finish`)."""
    if not isinstance(product, tuple):  # int32 products (no finish, or the pass ran again without it)
        return lambda i, j: {name: product[i:j]}
    whole = fused.tensor(finish[1], product, finish[2], (n, -1))

    def made(i: int, j: int) -> dict:
        if j - i == n:
            return {name: whole}
        # the edge counts are the whole batch's: the first pass carries them and the others
        # none (the saturation counts are summed over passes)
        part = Tensor(whole.codes[i:j], whole.type, whole.edges if i == 0 else 0)
        if whole.fused:
            part.fused = {k: v if i == 0 else 0 for k, v in whole.fused.items()}
        return {name: part}
    return made


def simulate_codes(design: Design | str | Path, codes: np.ndarray, trace: bool = False) -> SimResult:
    """Run the design on input codes as the fabric receives them from the DMA.

    Args:
        design: a loaded design, or its folder (loaded and checked here).
        codes: (batch, design.n_inputs) integer codes of the input type, in the design's
            stream order; no float step in between.
        trace: also return every layer's output values.

    Returns:
        SimResult: outputs, codes, saturation counts (and the trace).

    Raises:
        SimError: a wrong row length, or codes outside the input type's range (the stream
            cannot carry them).
    """
    design = _design(design)
    t = design.input_type
    codes = np.asarray(codes)
    n = design.n_inputs
    if codes.ndim != 2 or codes.shape[1] != n:
        raise SimError(f"input codes of shape {list(codes.shape)}, the design takes (batch, {n})")
    if codes.size and (codes.min() < t.min_code or codes.max() > t.max_code):
        raise SimError(f"input codes outside {t.cpp()}'s range {t.min_code}..{t.max_code}")
    shaped = codes.astype(np.int64).reshape((len(codes),) + design.input_shape)
    return _run_chunks(design, len(shaped), lambda i, j: Tensor(shaped[i:j], t), trace)


# kinds whose output holds their input's codes, only rearranged: the input's count of
# values at the type's edges stands for theirs when the type is the same
SAME_CODES = ("Transpose", "Reshape", "Clone")


def _by_name(design: Design) -> dict:
    """The design's layers by name, found once."""
    if "_by_name" not in design.cache:
        design.cache["_by_name"] = {layer.name: layer for layer in design.layers}
    return design.cache["_by_name"]


def _simulate(design: Design, cur: Tensor, products: dict[str, np.ndarray | Tensor] | None, trace: bool) -> SimResult:
    """The layers in order on one pass's input tensor. `products`, by layer name, holds what
    sim/int8.py made of a Dense: its product, or its output Tensor (with the layers its
    pass ran, `Tensor.fused`). A layer whose compiled pass can run the layers after it (an
    ApplyAlpha, a ReLU: `fused.chains`) runs them there where it can (not when tracing:
    each layer's own output is not made then)."""
    traced: dict[str, np.ndarray] | None = {} if trace else None
    edges: dict[str, int] = {}
    by_output: dict[str, Tensor] = {}
    counted: dict[int, int] = {}  # id of a tensor -> its edge count
    chains = {} if trace else fused.chains(design)
    done: set[str] = set()  # layers already run inside the pass of a layer before them
    for layer in design.layers:
        kind = layer.class_name
        if layer.name in done:
            continue
        src = None
        if kind in ("Input", "InputLayer"):
            out = cur
        elif kind in MERGES:
            a, b = (by_output[i] for i in layer.inputs[:2])
            out = MERGES[kind](layer, a, b)
        elif isinstance(made := products.get(layer.name) if products else None, Tensor):
            out = made  # made with the input coding (sim/int8.py), with the layers after it
        else:
            fn = LAYERS.get(kind)
            if fn is None:
                raise SimError(f"layer {layer.name}: kind {kind} is not simulated yet")
            src = by_output.get(layer.inputs[0], cur) if layer.inputs else cur
            extra = {"product": made} if made is not None else {}
            if chains.get(layer.name):
                extra["after"] = chains[layer.name]
            out = fn(layer, src, **extra)
        if out.fused:  # the pass ran the layers after it too: out is the last one's
            edges.update(out.fused)
            done.update(out.fused)
            last = _by_name(design)[next(reversed(out.fused))]
            by_output.update({name: out for name in last.outputs})
            counted[id(out)] = out.edges
            cur = out
            continue
        for name in layer.outputs:
            by_output[name] = out
        if kind in SAME_CODES and out.type == src.type and id(src) in counted:
            edges[layer.name] = counted[id(src)]
        else:
            edges[layer.name] = _edge_count(out)
        counted[id(out)] = edges[layer.name]
        if trace:
            traced[layer.name] = out.values
        cur = out
    codes = cur.ints.reshape(len(cur.codes), -1)
    return SimResult(to_float(codes, cur.type), codes, cur.type, traced, edges)
