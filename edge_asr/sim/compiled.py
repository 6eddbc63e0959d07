"""A whole design in one onnxruntime call: the host's fast path for float32 inputs.

`lower` builds the graph from the layers' exact arithmetic (`sim/lower.py`): the input
coding, every layer, and for each layer the count of values at its type's edges (the
simulator's saturation report), the count computed only when the layer's extremes reach
an edge (an If node). The session is made once per design and number of threads. A design
the graph does not express, a machine without onnxruntime or the onnx package (a board),
float64 inputs and traces run on the numpy kernels instead; tests/test_sim_compiled.py
holds this path to them, value for value and count for count.
"""

from __future__ import annotations

import threading

import numpy as np

from ..errors import FixedPointError, SimError
from ..ir.design import Design
from .fixed import FixedType, _check_range
from .lower import LOWER, Graph, NotLowered, Value, recast

_LOCK = threading.Lock()
# rows per call: the largest tensor near this many bytes (as the numpy passes, but larger:
# a call costs more than a numpy pass, and onnxruntime's own threads share the work)
CALL_BYTES = 1 << 26
SAME_CODES = ("Transpose", "Reshape", "Clone")


class Compiled:
    """A lowered design: its ONNX model (bytes), the names of its outputs, and sessions."""

    def __init__(self, model: bytes, y: str, extremes: list[str], edges: dict[str, str | None], largest: int,
                 input_type: FixedType, input_layer: str | None):
        self.model, self.y, self.extremes, self.edges = model, y, extremes, edges
        self.largest, self.input_type, self.input_layer = largest, input_type, input_layer
        self.sessions: dict[int, object] = {}

    def session(self, threads: int):
        """The onnxruntime session on `threads` threads, made once; its threads do not spin
        after a call (numpy work may follow on the same cores)."""
        with _LOCK:
            if threads not in self.sessions:
                import onnxruntime as ort
                options = ort.SessionOptions()
                options.intra_op_num_threads, options.inter_op_num_threads = threads, 1
                options.add_session_config_entry("session.intra_op.allow_spinning", "0")
                self.sessions[threads] = ort.InferenceSession(self.model, options, providers=["CPUExecutionProvider"])
            return self.sessions[threads]


def compiled_for(design: Design) -> Compiled | None:
    """The design's graph, lowered once (None when it does not lower, or without
    onnxruntime and onnx)."""
    key = "_compiled"
    if key not in design.cache:
        try:
            import onnx  # noqa: F401
            import onnxruntime  # noqa: F401
        except ImportError:
            design.cache[key] = None
        else:
            try:
                design.cache[key] = _lower(design)
            except (NotLowered, SimError):
                design.cache[key] = None
    return design.cache[key]


def _edge_count(g: Graph, v: Value) -> str | None:
    """An int64 scalar: how many codes sit at v's type's largest code (or the smallest of a
    signed type); None when v's bounds show none can. The count runs only when the
    extremes, read first, reach an edge (an If node)."""
    t = v.type
    tests = [(float(t.max_code), "ReduceMax")] if v.hi >= t.max_code else []
    if t.signed and v.lo <= t.min_code:
        tests.append((float(t.min_code), "ReduceMin"))
    if not tests:
        return None
    oh, tp = g.onnx.helper, g.onnx.TensorProto
    if v.dtype == "uint8":  # QuantizeLinear's codes (zero point 128): read as they are
        tests = [(edge + 128, reduce) for edge, reduce in tests]
        as_stored = lambda edge: g.const(int(edge), np.uint8)  # noqa: E731
    else:
        as_stored = lambda edge: g.const(edge, np.float64 if v.dtype == "double" else np.float32)  # noqa: E731
    reach = [g.op("Equal", g.op(reduce, v.name, keepdims=0), as_stored(edge)) for edge, reduce in tests]
    body, sums = [], []
    for edge, _ in tests:
        hit = g.name("hit")
        body += [oh.make_node("Equal", [v.name, as_stored(edge)], [hit + "_eq"]),
                 oh.make_node("Cast", [hit + "_eq"], [hit + "_int"], to=tp.INT64),
                 oh.make_node("ReduceSum", [hit + "_int"], [hit], keepdims=0)]
        sums.append(hit)
    total = sums[0]
    if len(sums) == 2:
        total = g.name("hits")
        body.append(oh.make_node("Add", sums, [total]))
    out, zero = g.name("edges"), g.name("zero")
    then = oh.make_graph(body, out + "_then", [], [oh.make_tensor_value_info(total, tp.INT64, [])])
    orelse = oh.make_graph([oh.make_node("Constant", [], [zero], value=g.onnx.numpy_helper.from_array(np.array(0, np.int64)))],
                           out + "_else", [], [oh.make_tensor_value_info(zero, tp.INT64, [])])
    cond = reach[0] if len(reach) == 1 else g.op("Or", *reach)
    g.nodes.append(oh.make_node("If", [cond], [out], then_branch=then, else_branch=orelse))
    return out


def _code_input(g: Graph, design: Design) -> tuple[Value, list[str]]:
    """The host's coding of float32 inputs (fixed.quantize_float_bounded): 8-bit signed
    AP_RND_CONV/AP_SAT types by QuantizeLinear into uint8 (zero point 128, as sim/int8.py),
    others by x * 2**F, Round or Floor, Clip, in float32 (exact up to 24 bits). Returns the
    codes and the outputs that check the range (extremes before the clip)."""
    t = design.input_type
    x = g.op("Reshape", "x", g.const([-1, *design.input_shape], np.int64))
    if t.signed and t.width <= 8 and t.rounding == "AP_RND_CONV" and t.saturation == "AP_SAT":
        q = g.op("QuantizeLinear", x, g.const(2.0 ** -t.fractional, np.float32), g.const(128, np.uint8))
        if t.width < 8:
            q = g.op("Clip", q, g.const(t.min_code + 128, np.uint8), g.const(t.max_code + 128, np.uint8))
        return Value(q, t, design.input_shape, float(t.min_code), float(t.max_code), "uint8"), []
    if t.rounding not in ("AP_RND_CONV", "AP_TRN") or t.saturation not in ("AP_SAT", "AP_SAT_SYM") or t.width > 24:
        raise NotLowered(f"input type {t.cpp()}")
    q = g.op("Round" if t.rounding == "AP_RND_CONV" else "Floor", g.op("Mul", x, g.const(2.0 ** t.fractional, np.float32)))
    extremes = [g.op("ReduceMin", q, keepdims=0), g.op("ReduceMax", q, keepdims=0)]
    q = g.op("Clip", q, g.const(t.lowest_code, np.float32), g.const(t.max_code, np.float32))
    return Value(g.op("Cast", q, to=11), t, design.input_shape, float(t.lowest_code), float(t.max_code)), extremes


def _lower(design: Design) -> Compiled:
    g = Graph()
    oh, tp = g.onnx.helper, g.onnx.TensorProto
    cur, extremes = _code_input(g, design)
    by_output: dict[str, Value] = {}
    edges: dict[str, str | None] = {}
    counted: dict[str, str | None] = {}
    largest = 4 * int(np.prod(design.input_shape))
    for layer in design.layers:
        kind = layer.class_name
        src = None
        if kind in ("Input", "InputLayer"):
            out = cur
        else:
            fn = LOWER.get(kind)
            if fn is None or len(layer.inputs) != 1:
                raise NotLowered(f"layer kind {kind}")
            src = by_output.get(layer.inputs[0], cur)
            out = fn(g, layer, src)
            largest = max(largest, 8 * int(np.prod(out.shape or (1,))))
        for name in layer.outputs:
            by_output[name] = out
        if kind in SAME_CODES and src is not None and out.type == src.type and src.name in counted:
            edges[layer.name] = counted[src.name]
        else:
            edges[layer.name] = _edge_count(g, out)
        counted[out.name] = edges[layer.name]
        cur = out
    if cur.type != design.output_type:
        cur = recast(g, cur, design.output_type)
    y = g.op("Reshape", cur.name if cur.dtype == "double" else g.op("Cast", cur.name, to=11),
             g.const([-1, design.n_outputs], np.int64))
    outputs = [oh.make_tensor_value_info(y, tp.DOUBLE, None)]
    outputs += [oh.make_tensor_value_info(e, tp.FLOAT, []) for e in extremes]
    outputs += [oh.make_tensor_value_info(e, tp.INT64, []) for e in dict.fromkeys(v for v in edges.values() if v)]
    graph = oh.make_graph(g.nodes, design.name or "design", [oh.make_tensor_value_info("x", tp.FLOAT, None)],
                          outputs, g.inits)
    model = oh.make_model(graph, opset_imports=[oh.make_opsetid("", 17)])
    model.ir_version = 8
    first = design.layers[0].name if design.layers and design.layers[0].class_name in ("Input", "InputLayer") else None
    return Compiled(model.SerializeToString(), y, extremes, edges, largest, design.input_type, first)


def run(compiled: Compiled, x: np.ndarray, threads: int) -> tuple[np.ndarray, dict[str, int]]:
    """float32 inputs (ONNX layout, batch first) -> (output codes int64 (batch, n_out),
    saturation counts by layer name), in calls of about CALL_BYTES. Raises FixedPointError
    for NaN, Inf or values too large to code exactly, as the numpy coding does."""
    session = compiled.session(threads)
    wanted = [compiled.y, *compiled.extremes, *dict.fromkeys(v for v in compiled.edges.values() if v)]
    rows = max(1, CALL_BYTES // compiled.largest)
    codes, counts = [], dict.fromkeys(compiled.edges, 0)
    t = compiled.input_type
    for i in range(0, len(x), rows):
        part = np.ascontiguousarray(x[i:i + rows], dtype=np.float32)
        got = dict(zip(wanted, session.run(wanted, {"x": part})))
        if compiled.extremes:  # the codes before the clip: past 2**52 (or NaN) is refused
            lo, hi = (float(got[e]) for e in compiled.extremes)
            if not (-2.0 ** 52 < lo and hi < 2.0 ** 52):
                _check_range(part, t)
                raise FixedPointError(f"value too large to convert exactly to {t.cpp()}")
        else:  # QuantizeLinear saturates NaN, Inf and huge values: check when a code sits at the clamp
            edge = compiled.edges.get(compiled.input_layer)
            if edge and int(got[edge]):
                _check_range(part, t)
        codes.append(got[compiled.y])
        for layer, out in compiled.edges.items():
            if out:
                counts[layer] += int(got[out])
    y = np.concatenate(codes) if len(codes) > 1 else codes[0]
    return y.astype(np.int64), counts
