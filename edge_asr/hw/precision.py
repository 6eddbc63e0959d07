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
    """(min, max) of every node output of the float graph, and of the graph input."""
    ranges: dict[str, tuple[float, float]] = field(default_factory=dict)
    input_range: tuple[float, float] | None = None
    n: int = 0



def calibrate(float_model, x: np.ndarray, max_samples: int = 512) -> Calibration:
    """Run the cleaned float graph (onnxruntime) on inputs x and record each node's output range."""
    import onnx
    import onnxruntime as ort

    proto = onnx.shape_inference.infer_shapes(float_model.model)
    known = {vi.name: vi for vi in list(proto.graph.value_info) + list(proto.graph.output)}
    node_of = {}
    for node in proto.graph.node:
        out = node.output[0]
        node_of[out] = node.name
        if out not in {o.name for o in proto.graph.output} and out in known:
            proto.graph.output.append(known[out])
    sess = ort.InferenceSession(proto.SerializeToString(), providers=["CPUExecutionProvider"])
    in_name = sess.get_inputs()[0].name
    names = [o.name for o in sess.get_outputs()]
    lo = {n: np.inf for n in names}
    hi = {n: -np.inf for n in names}
    x = np.asarray(x, np.float32)[:max_samples]
    for sample in x:
        outs = sess.run(None, {in_name: sample[None]})
        for n, v in zip(names, outs, strict=True):
            lo[n] = min(lo[n], float(v.min()))
            hi[n] = max(hi[n], float(v.max()))
    cal = Calibration(n=len(x), input_range=(float(x.min()), float(x.max())) if len(x) else None)
    for n in names:
        if n in node_of:
            cal.ranges[node_of[n]] = (lo[n], hi[n])
    return cal


def _calibrated_range(cal: Calibration | None, node_name: str) -> tuple[float, float] | None:
    if cal is None:
        return None
    r = cal.ranges.get(node_name)
    if r is None and "_" in node_name:
        # Gemm_k of the float graph became MatMul_k + Add_k in the prepared one
        op, _, k = node_name.rpartition("_")
        if op == "Add":
            r = cal.ranges.get(f"Gemm_{k}")
    return r


def _calibrated(cal: Calibration | None, node_name: str) -> float | None:
    r = _calibrated_range(cal, node_name)
    return None if r is None else max(abs(r[0]), abs(r[1]))


def _default_result(bits: int) -> FixedType:
    return FixedType(bits, DEFAULT_INTEGER_BITS, True, "AP_RND_CONV", "AP_SAT")


def choose_precision(model, cal: Calibration | None, bits: int = 16) -> tuple[dict, list[dict]]:
    """Per-layer types for the prepared (channels-last) graph.

    Returns (LayerName section of an hls4ml config, rows describing each choice).
    """
    graph = model.graph
    inits = {i.name: model.get_initializer(i.name) for i in graph.initializer}
    tensor_type: dict[str, FixedType] = {}
    layers: dict[str, dict] = {}
    rows: list[dict] = []

    in_name = graph.input[0].name
    if cal is not None and cal.input_range is not None:
        t_in = result_type(max(abs(cal.input_range[0]), abs(cal.input_range[1])), bits)
    else:
        t_in = _default_result(bits)
    tensor_type[in_name] = t_in
    layers[in_name] = {"Precision": {"result": str_type(t_in)}}
    rows.append({"layer": in_name, "op": "Input", "result": t_in, "range": cal.input_range if cal else None})

    for node in graph.node:
        t_x = tensor_type.get(node.input[0], t_in)
        out = node.output[0]
        cfg: dict = {}
        row = {"layer": node.name, "op": node.op_type}
        if node.op_type in ("Conv", "MatMul"):
            w = inits[node.input[1]]
            b = inits.get(node.input[2]) if len(node.input) > 2 else None
            t_w = weight_type(w, bits)
            # largest |sum|: every input at the edge of its type, signs lined up with the weights
            x_max = max(abs(t_x.min_value), abs(t_x.max_value))
            per_out = np.abs(w).reshape(w.shape[0], -1).sum(axis=1) if node.op_type == "Conv" \
                else np.abs(w).sum(axis=0)
            bound = float(per_out.max()) * x_max
            t_b = None
            if b is not None:
                t_b = weight_type(b, bits)
                bound += float(np.abs(b).max())
            frac = t_x.fractional + t_w.fractional
            if t_b is not None:
                frac = max(frac, t_b.fractional)
            integer = integer_bits_for(bound, True)
            t_acc = FixedType(min(MAX_ACCUM_WIDTH, integer + frac), integer, True)
            if node.op_type == "MatMul":
                # The bias comes in the Add after it (hls4ml makes that an ApplyAlpha layer):
                # pass the exact sum on, so the result is rounded once, after the bias.
                t_res = t_acc
            else:
                m = _calibrated(cal, node.name)
                t_res = result_type(m, bits) if m is not None else _default_result(bits)
            cfg["Precision"] = {"weight": str_type(t_w), "result": str_type(t_res), "accum": str_type(t_acc)}
            if t_b is not None:
                cfg["Precision"]["bias"] = str_type(t_b)
                layers[node.input[2]] = {"Precision": {"result": str_type(t_b)}}
            layers[node.input[1]] = {"Precision": {"result": str_type(t_w)}}
            row.update(result=t_res, weight=t_w, bias=t_b, accum=t_acc, range=_calibrated_range(cal, node.name))
            tensor_type[out] = t_res
        elif node.op_type == "Add" and len(node.input) > 1 and node.input[1] in inits:
            # the bias half of a Gemm; hls4ml fuses it into the Dense before it
            b = inits[node.input[1]]
            t_b = weight_type(b, bits)
            m = _calibrated(cal, node.name)
            t_res = result_type(m, bits) if m is not None else _default_result(bits)
            layers[node.input[1]] = {"Precision": {"result": str_type(t_b)}}
            cfg["Precision"] = {"result": str_type(t_res), "bias": str_type(t_b)}
            row.update(result=t_res, bias=t_b, range=_calibrated_range(cal, node.name))
            tensor_type[out] = t_res
        elif node.op_type == "Relu":
            t_res = FixedType(t_x.width - 1, t_x.integer - 1, False, "AP_RND_CONV", "AP_SAT") if t_x.signed else t_x
            cfg["Precision"] = {"result": str_type(t_res)}
            row.update(result=t_res)
            tensor_type[out] = t_res
        elif node.op_type == "Softmax":
            t_res = FixedType(bits, 1, False, "AP_RND_CONV", "AP_SAT")
            cfg["Precision"] = {"result": str_type(t_res), **softmax_types(model.get_tensor_shape(node.input[0])[-1])}
            cfg["Implementation"] = "stable"
            row.update(result=t_res)
            tensor_type[out] = t_res
        else:  # MaxPool, AveragePool, Flatten, Reshape, Transpose: same values, same type
            cfg["Precision"] = {"result": str_type(t_x)}
            if node.op_type == "AveragePool":
                cfg["Precision"]["accum"] = str_type(FixedType(min(64, t_x.width + 8), t_x.integer + 8, True))
            row.update(result=t_x)
            tensor_type[out] = t_x
        layers[node.name] = cfg
        rows.append(row)
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
