"""Calibration and per-layer precision: float ranges -> ap_fixed types -> an hls4ml config.

Rules (W = --bits, default 16):
- input, Conv/Dense results: W bits, signed, integer bits from the calibrated magnitude
  times MARGIN; round half to even (AP_RND_CONV) and saturate (AP_SAT), since these are
  where values are rounded and where an outlier beyond the calibrated range may land.
- weights and biases: W bits, integer bits from their own largest magnitude (no data
  needed); the converter then puts every weight exactly on that grid.
- accumulators: exact. Fractional bits = input's + weight's, integer bits for the
  largest sum the input *type* allows (sum |w| * max|x| + |b|): no overflow is possible.
- ReLU: the unsigned half of its input type (one bit narrower, same lsb): exact.
- MaxPool, Flatten/Reshape, Transpose: their input's type (they only move values).
- Softmax: probabilities as ufixed<W,1>; table types sized for the class count
  (softmax_types; hls4ml's defaults are off by up to ~0.2).
Without calibration data every activation gets DEFAULT_INTEGER_BITS integer bits (said
in the printed table); weights, biases and accumulators are sized as above.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..errors import FixedPointError
from ..sim.fixed import FixedType, integer_bits_for

MARGIN = 1.25
DEFAULT_INTEGER_BITS = 6
MAX_ACCUM_WIDTH = 64


def result_type(max_abs: float, bits: int, signed: bool = True) -> FixedType:
    """A W-bit result type whose integer bits hold max_abs times MARGIN (round half to even, saturate)."""
    integer = max(1 if signed else 0, integer_bits_for(max_abs * MARGIN, signed))
    return FixedType(bits, min(integer, bits), signed, "AP_RND_CONV", "AP_SAT")


def weight_type(data: np.ndarray, bits: int) -> FixedType:
    """A W-bit signed type whose integer bits hold the tensor's largest magnitude."""
    max_abs = float(np.abs(data).max(initial=0.0))
    integer = max(1, integer_bits_for(max_abs, True))
    return FixedType(bits, min(integer, bits), True, "AP_RND_CONV", "AP_SAT")


@dataclass
class Calibration:
    """(min, max) of every tensor of the prepared graph (by tensor name) that holds the values
    of a tensor of the float graph, and of the graph input."""
    ranges: dict[str, tuple[float, float]] = field(default_factory=dict)
    input_range: tuple[float, float] | None = None
    n: int = 0

    def max_abs(self, tensor: str) -> float | None:
        """The largest magnitude the tensor held, or None when it was not calibrated."""
        r = self.ranges.get(tensor)
        return None if r is None else max(abs(r[0]), abs(r[1]))


def _float_tensors(float_model, x: np.ndarray) -> tuple[list[str], list[np.ndarray]]:
    """Names and values of every node output of the float graph (onnxruntime) on inputs x."""
    import onnx
    import onnxruntime as ort

    proto = onnx.shape_inference.infer_shapes(float_model.model)
    known = {vi.name: vi for vi in list(proto.graph.value_info) + list(proto.graph.output)}
    outputs = {o.name for o in proto.graph.output}
    for node in proto.graph.node:
        out = node.output[0]
        if out not in outputs and out in known:
            proto.graph.output.append(known[out])
    sess = ort.InferenceSession(proto.SerializeToString(), providers=["CPUExecutionProvider"])
    in_name = sess.get_inputs()[0].name
    names = [o.name for o in sess.get_outputs()]
    values = [sess.run(None, {in_name: sample[None]}) for sample in x]
    return names, [np.stack([v[k] for v in values]) for k in range(len(names))]


PROBES = 4  # inputs both graphs run on to match their tensors: values that agree on one by chance rarely agree on four


def _prepared_tensors(prepared, probes: np.ndarray) -> dict[str, list[np.ndarray]]:
    """Every tensor of the prepared graph on each probe input, by QONNX's executor (its
    channels-last nodes are QONNX's own ops, which onnxruntime alone cannot run)."""
    import onnxruntime as ort
    from qonnx.core.onnx_exec import execute_onnx
    initializers = {i.name for i in prepared.graph.initializer}
    out: dict[str, list[np.ndarray]] = {}
    ort.set_default_logger_severity(3)  # QONNX runs each node as an opset-1 model: warnings per node
    try:
        for probe in probes:
            ctx = execute_onnx(prepared, {prepared.graph.input[0].name: probe[None]}, return_full_exec_context=True)
            for k, v in ctx.items():
                if k and k not in initializers:
                    out.setdefault(k, []).append(np.asarray(v))
    finally:
        ort.set_default_logger_severity(2)
    return out


def _same_values(a: list[np.ndarray], b: np.ndarray) -> bool:
    """True when a prepared tensor holds, on every probe, the float tensor's values (rows of b)
    in some order: a layout change moves values, it does not change them."""
    return all(x.size == y.size and np.allclose(np.sort(x, axis=None), np.sort(y, axis=None), rtol=1e-4, atol=1e-5)
               for x, y in zip(a, b, strict=True))


def calibrate(float_model, prepared, x: np.ndarray, max_samples: int = 512) -> Calibration:
    """Ranges of the prepared graph's tensors over inputs x.

    The float graph runs on every input (onnxruntime); the prepared graph's passes rename
    and rewrite its nodes (Gemm becomes MatMul + Add, layouts turn channels-last), so each
    prepared tensor is matched to the float tensor that holds the same values on the first
    PROBES inputs, not by name. A prepared tensor with no float counterpart (a MatMul before its
    bias) has no range: its type does not come from data.
    """
    x = np.asarray(x, np.float32)[:max_samples]
    cal = Calibration(n=len(x), input_range=(float(x.min()), float(x.max())) if len(x) else None)
    if not len(x):
        return cal
    names, values = _float_tensors(float_model, x)
    candidates = [(float_model.graph.input[0].name, x), *zip(names, values, strict=True)]
    for tensor, probe_values in _prepared_tensors(prepared, x[:PROBES]).items():
        match = next((v for _, v in candidates if _same_values(probe_values, v[:PROBES])), None)
        if match is not None:
            cal.ranges[tensor] = (float(match.min()), float(match.max()))
    return cal


def _default_result(bits: int) -> FixedType:
    return FixedType(bits, DEFAULT_INTEGER_BITS, True, "AP_RND_CONV", "AP_SAT")


def _calibrated_result(cal: Calibration | None, tensor: str, bits: int) -> FixedType:
    m = cal.max_abs(tensor) if cal else None
    return result_type(m, bits) if m is not None else _default_result(bits)


def exact_accumulator(integer: int, fractional: int, where: str) -> FixedType:
    """The signed type of `integer` integer and `fractional` fractional bits, which holds every
    sum exactly; FixedPointError when it needs more than MAX_ACCUM_WIDTH bits (the
    simulator's int64 path), rather than a narrower type that would round the sums (the
    caller narrows what it can first: see _kernel)."""
    if integer + fractional > MAX_ACCUM_WIDTH:
        raise FixedPointError(f"{where}: an exact accumulator needs {integer + fractional} bits ({integer} integer, "
                              f"{fractional} fractional), more than {MAX_ACCUM_WIDTH}; convert with fewer --bits")
    return FixedType(integer + fractional, integer, True)


def _narrower(t: FixedType, bits: int) -> FixedType:
    """t with `bits` fewer fractional bits (as wide as its integer part at the least)."""
    return FixedType(max(t.width - bits, t.integer + 1), t.integer, t.signed, t.rounding, t.saturation)


@dataclass
class _Choice:
    """One node's types: its hls4ml LayerName entry, its row in the table, its result type,
    and configuration entries for its weight tensors (by tensor name)."""
    cfg: dict
    row: dict
    result: FixedType
    tensors: dict = field(default_factory=dict)


def _kernel(node, t_x: FixedType, inits: dict, cal, bits: int) -> _Choice:
    """Conv / MatMul: weights and bias on their own grid, an exact accumulator, a calibrated result."""
    w = inits[node.input[1]]
    b = inits.get(node.input[2]) if len(node.input) > 2 else None
    # largest |sum|: every input at the edge of its type, signs lined up with the weights
    x_max = max(abs(t_x.min_value), abs(t_x.max_value))
    per_out = np.abs(w).reshape(w.shape[0], -1).sum(axis=1) if node.op_type == "Conv" else np.abs(w).sum(axis=0)
    bound = float(per_out.max()) * x_max + (float(np.abs(b).max()) if b is not None else 0.0)
    integer = integer_bits_for(bound, True)
    t_w, t_b = weight_type(w, bits), weight_type(b, bits) if b is not None else None
    # At widths near 32 the exact sum of input x weight can need more than MAX_ACCUM_WIDTH
    # bits: the weights (and bias) then lose the fractional bits past it, which keeps every
    # sum exact on their grid, rather than an accumulator that rounds.
    excess = integer + max(t_x.fractional + t_w.fractional, t_b.fractional if t_b else 0) - MAX_ACCUM_WIDTH
    if excess > 0:
        t_w = _narrower(t_w, excess)
        t_b = _narrower(t_b, max(0, t_b.fractional - (MAX_ACCUM_WIDTH - integer))) if t_b else None
    frac = max(t_x.fractional + t_w.fractional, t_b.fractional if t_b else 0)
    t_acc = exact_accumulator(integer, frac, f"layer {node.name}")
    # A MatMul's bias comes in the Add after it (hls4ml makes that an ApplyAlpha layer): pass
    # the exact sum on, so the result is rounded once, after the bias.
    t_res = t_acc if node.op_type == "MatMul" else _calibrated_result(cal, node.output[0], bits)
    cfg = {"Precision": {"weight": str_type(t_w), "result": str_type(t_res), "accum": str_type(t_acc)}}
    tensors = {node.input[1]: {"Precision": {"result": str_type(t_w)}}}
    if t_b is not None:
        cfg["Precision"]["bias"] = str_type(t_b)
        tensors[node.input[2]] = {"Precision": {"result": str_type(t_b)}}
    row = {"result": t_res, "weight": t_w, "bias": t_b, "accum": t_acc,
           "range": cal.ranges.get(node.output[0]) if cal else None}
    return _Choice(cfg, row, t_res, tensors)


def _bias_add(node, t_x: FixedType, inits: dict, cal, bits: int) -> _Choice:
    """The bias half of a Gemm (hls4ml fuses it into the Dense before it): a calibrated result."""
    t_b = weight_type(inits[node.input[1]], bits)
    t_res = _calibrated_result(cal, node.output[0], bits)
    row = {"result": t_res, "bias": t_b, "range": cal.ranges.get(node.output[0]) if cal else None}
    return _Choice({"Precision": {"result": str_type(t_res), "bias": str_type(t_b)}}, row, t_res,
                   {node.input[1]: {"Precision": {"result": str_type(t_b)}}})


def _relu(node, t_x: FixedType, inits: dict, cal, bits: int) -> _Choice:
    """The unsigned half of the input type (one bit narrower, same lsb): exact."""
    t_res = FixedType(t_x.width - 1, t_x.integer - 1, False, "AP_RND_CONV", "AP_SAT") if t_x.signed else t_x
    return _Choice({"Precision": {"result": str_type(t_res)}}, {"result": t_res}, t_res)


def _moves_values(node, t_x: FixedType, inits: dict, cal, bits: int) -> _Choice:
    """MaxPool, AveragePool, Flatten, Reshape, Transpose: the same values, the same type."""
    cfg = {"Precision": {"result": str_type(t_x)}}
    if node.op_type == "AveragePool":
        cfg["Precision"]["accum"] = str_type(exact_accumulator(t_x.integer + 8, t_x.width - t_x.integer,
                                                               f"layer {node.name}"))
    return _Choice(cfg, {"result": t_x}, t_x)


def choose_precision(model, cal: Calibration | None, bits: int = 16) -> tuple[dict, list[dict]]:
    """Per-layer types for the prepared (channels-last) graph.

    Returns (LayerName section of an hls4ml config, rows describing each choice).
    """
    graph = model.graph
    inits = {i.name: model.get_initializer(i.name) for i in graph.initializer}
    in_name = graph.input[0].name
    if cal is not None and cal.input_range is not None:
        t_in = result_type(max(abs(cal.input_range[0]), abs(cal.input_range[1])), bits)
    else:
        t_in = _default_result(bits)
    tensor_type: dict[str, FixedType] = {in_name: t_in}
    layers: dict[str, dict] = {in_name: {"Precision": {"result": str_type(t_in)}}}
    rows: list[dict] = [{"layer": in_name, "op": "Input", "result": t_in, "range": cal.input_range if cal else None}]
    for node in graph.node:
        t_x = tensor_type.get(node.input[0], t_in)
        if node.op_type in ("Conv", "MatMul"):
            choice = _kernel(node, t_x, inits, cal, bits)
        elif node.op_type == "Add" and len(node.input) > 1 and node.input[1] in inits:
            choice = _bias_add(node, t_x, inits, cal, bits)
        elif node.op_type == "Relu":
            choice = _relu(node, t_x, inits, cal, bits)
        elif node.op_type == "Softmax":
            t_res = FixedType(bits, 1, False, "AP_RND_CONV", "AP_SAT")
            choice = _Choice({"Precision": {"result": str_type(t_res),
                                            **softmax_types(model.get_tensor_shape(node.input[0])[-1])},
                              "Implementation": "stable"}, {"result": t_res}, t_res)
        else:
            choice = _moves_values(node, t_x, inits, cal, bits)
        layers.update(choice.tensors)
        layers[node.name] = choice.cfg
        rows.append({"layer": node.name, "op": node.op_type, **choice.row})
        tensor_type[node.output[0]] = choice.result
    return layers, rows


def softmax_types(n: int) -> dict[str, str]:
    """Table types for hls4ml's 'stable' softmax, sized for n classes.

    hls4ml indexes its exp and 1/x tables with the top 10 bits of their input types. Its
    defaults make both indexes coarse (x_max - x_i as ufixed<W-1,I-1>, which also wraps
    once the spread reaches 2**(I-1); the sum of exponentials as fixed<18,8>, steps of
    0.25): outputs off by up to ~0.2. Here: x_max - x_i saturates at 8 (exp(-8) ~ 3e-4)
    in steps of 1/128, the sum is unsigned over [1, n] and the tables hold values in (0, 1].
    """
    sum_int = int(np.ceil(np.log2(n + 1)))
    return {
        "inp_norm": str_type(FixedType(16, 3, False, "AP_TRN", "AP_SAT")),
        "exp_table": str_type(FixedType(18, 1, False, "AP_RND", "AP_SAT")),
        "inv_table": str_type(FixedType(18, 1, False, "AP_RND", "AP_SAT")),
        "accum": str_type(FixedType(17 + sum_int, sum_int, False, "AP_TRN", "AP_SAT")),
        "inv_inp": str_type(FixedType(16, sum_int, False, "AP_TRN", "AP_SAT")),
    }


def str_type(t: FixedType) -> str:
    """hls4ml's spelling of a type, e.g. fixed<16,6,RND_CONV,SAT>."""
    base = "fixed" if t.signed else "ufixed"
    q, o = t.rounding[3:], t.saturation[3:]
    return f"{base}<{t.width},{t.integer},{q},{o}>"


def format_table(rows: list[dict], calibrated: bool) -> str:
    """The chosen types as a table for the terminal, one row per layer."""
    def s(t):
        return t.cpp() if t is not None else "-"

    head = f"{'layer':<14} {'op':<10} {'result':<34} {'weight':<32} {'accum':<22} range"
    lines = [head, "-" * len(head)]
    for r in rows:
        rng = r.get("range")
        rng_s = f"[{rng[0]:.3g}, {rng[1]:.3g}]" if rng else ("-" if calibrated else "default")
        lines.append(f"{r['layer']:<14} {r['op']:<10} {s(r.get('result')):<34} {s(r.get('weight')):<32} "
                     f"{s(r.get('accum')):<22} {rng_s}")
    if not calibrated:
        lines.append(f"no calibration data: activations use {DEFAULT_INTEGER_BITS} integer bits; pass --calib "
                     "for types fitted to the data")
    return "\n".join(lines)
