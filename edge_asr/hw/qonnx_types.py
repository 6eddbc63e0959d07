"""Types of a QONNX graph: taken from its Quant nodes, not calibrated.

A quantization-aware model (edge-asr train --qat, or any Brevitas/QKeras export) carries
its fixed-point types in Quant nodes: x -> clip(round(x / scale) + zero_point) * scale on
`bitwidth` bits. hls4ml 1.3's ONNX frontend turns these into the types of the layers
around them (weights, biases, activation results) and infers exact accumulators. What
it leaves at its defaults, we set here:
- the design's input type: the type of the Quant that takes the graph input, so the
  host codes the features straight onto the trained grid (one rounding, as in training);
- Softmax: the same probability and table types as the post-training path;
- a bias with no Quant node of its own: 16 bits sized to its values (it is then not
  trained on a grid, and the design differs from the QONNX graph by its rounding).
A scale that is a power of two makes a Quant an ap_fixed type exactly; other scales
become hls4ml ApplyAlpha layers (a multiply after the layer, on the default type).
"""

from __future__ import annotations

import math

import numpy as np

from ..errors import InputError
from ..sim.fixed import FixedType
from . import precision

QUANT_OPS = {"Quant", "BipolarQuant"}
QONNX_FILE = "model_qonnx.onnx"  # beside model.onnx in a model or design directory
DEFAULT_BIAS_BITS = 16


def is_qonnx(model) -> bool:
    """True when the graph holds QONNX Quant nodes (a quantization-aware export)."""
    return any(n.op_type in QUANT_OPS for n in model.graph.node)


def quant_attributes(node) -> tuple[bool, bool, str]:
    """A Quant node's (signed, narrow, rounding mode), with QONNX's defaults (signed, not
    narrow, ROUND)."""
    from onnx import helper
    attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}
    mode = attrs.get("rounding_mode", b"ROUND")
    mode = mode.decode() if isinstance(mode, bytes) else mode
    return bool(attrs.get("signed", 1)), bool(attrs.get("narrow", 0)), mode.upper()


def quant_type(model, node) -> FixedType | None:
    """The ap_fixed type a Quant node stands for, or None when its scale is not one power
    of two or its zero point is not 0 (hls4ml then scales with an ApplyAlpha layer)."""
    scale = model.get_initializer(node.input[1])
    zero = model.get_initializer(node.input[2])
    bits = model.get_initializer(node.input[3])
    if scale is None or zero is None or bits is None:
        raise InputError(f"Quant node {node.name}: scale, zero point and bit width must be constants")
    scale, zero = np.asarray(scale, np.float64).reshape(-1), np.asarray(zero, np.float64).reshape(-1)
    width = int(np.asarray(bits).reshape(-1)[0])
    if np.any(zero != 0) or np.any(scale != scale[0]) or scale[0] <= 0:
        return None
    exp = math.log2(float(scale[0]))
    if exp != round(exp):
        return None
    signed, narrow, mode = quant_attributes(node)
    rounding = {"ROUND": "AP_RND_CONV", "FLOOR": "AP_TRN"}.get(mode.upper())
    if rounding is None:
        raise InputError(f"Quant node {node.name}: rounding mode {mode} has no ap_fixed counterpart")
    # a value v = code * 2**exp on `width` bits: integer bits (sign included) = width + exp
    return FixedType(width, width + int(round(exp)), signed, rounding,
                     "AP_SAT_SYM" if narrow and signed else "AP_SAT")


def _input_quant(model):
    """The Quant node the graph input reaches through layout-only nodes, or None."""
    name = model.graph.input[0].name
    while True:
        users = [n for n in model.graph.node if name in n.input]
        if len(users) != 1:
            return None
        node = users[0]
        if node.op_type in QUANT_OPS:
            return node
        if node.op_type not in ("Transpose", "Reshape", "Identity"):
            return None
        name = node.output[0]


def choose_types(model) -> tuple[dict, list[dict]]:
    """LayerName section of an hls4ml config for a prepared QONNX graph, and the rows of
    the types table for what is set here (the rest is hls4ml's, from the Quant nodes)."""
    graph = model.graph
    layers: dict[str, dict] = {}
    rows: list[dict] = []
    in_name = graph.input[0].name
    quant = _input_quant(model)
    t_in = quant_type(model, quant) if quant is not None else None
    note = f"from {quant.name}" if t_in is not None else "no power-of-two input Quant: default"
    if t_in is None:
        t_in = FixedType(16, precision.DEFAULT_INTEGER_BITS, True, "AP_RND_CONV", "AP_SAT")
    layers[in_name] = {"Precision": {"result": precision.str_type(t_in)}}
    rows.append({"layer": in_name, "op": "Input", "result": t_in, "note": note})
    quantized = {n.output[0] for n in graph.node if n.op_type in QUANT_OPS}
    for node in graph.node:
        if node.op_type == "Softmax":
            t_res = FixedType(16, 1, False, "AP_RND_CONV", "AP_SAT")
            n = model.get_tensor_shape(node.input[0])[-1]
            layers[node.name] = {"Precision": {"result": precision.str_type(t_res), **precision.softmax_types(n)},
                                 "Implementation": "stable"}
            producer = next((p for p in graph.node if node.input[0] in p.output), None)
            t_logits = quant_type(model, producer) if producer is not None and producer.op_type == "Quant" else None
            if t_logits is not None and t_logits.width < 10:
                # hls4ml's tables take 2**width entries at most (it would shrink them itself, warning)
                layers[node.name]["TableSize"] = 2 ** t_logits.width
            rows.append({"layer": node.name, "op": "Softmax", "result": t_res, "note": "post-training rule"})
        elif node.op_type in ("Conv", "Add") and len(node.input) > 2 - (node.op_type == "Add"):
            b_name = node.input[2] if node.op_type == "Conv" else node.input[1]
            b = model.get_initializer(b_name)
            if b is not None and b_name not in quantized:
                t_b = precision.weight_type(b, DEFAULT_BIAS_BITS)
                layers[node.name] = {"Precision": {"bias": precision.str_type(t_b)}}
                layers[b_name] = {"Precision": {"result": precision.str_type(t_b)}}
                rows.append({"layer": node.name, "op": node.op_type, "bias": t_b,
                             "note": "bias not quantized in the graph: 16 bits"})
    return layers, rows


def format_table(hls_model) -> str:
    """The design's types as hls4ml set them from the Quant nodes, one row per layer."""
    head = f"{'layer':<22} {'kind':<12} {'result':<36} {'weight':<34} accum"
    lines = [head, "-" * len(head)]
    for layer in hls_model.get_layers():
        t = {k: str(layer.types[k].precision) if k in layer.types else "-" for k in ("result_t", "weight_t", "accum_t")}
        lines.append(f"{layer.name:<22} {layer.class_name:<12} {t['result_t']:<36} {t['weight_t']:<34} "
                     f"{t['accum_t']}")
    lines.append("types from the graph's Quant nodes (quantization-aware training); no calibration")
    return "\n".join(lines)


def lower_quant_nodes(proto):
    """A copy of a QONNX ModelProto with each Quant node written in standard ONNX ops, so
    that onnxruntime (and the base install) runs the quantized model.

    QONNX's Quant is y = (round(clip(x / scale + zero_point, lo, hi)) - zero_point) * scale
    (qonnx.custom_op.general.intquant.int_quant); ONNX's Round also rounds half to even,
    and Div, Clip, Round and Mul are each exact or correctly rounded in float32, so the
    result equals QONNX's executor bit for bit. We write this lowering because QONNX's own
    (QuantToQCDQ) stops at 8 bits, and biases are quantized on 16 or more.
    """
    import onnx
    from onnx import helper, numpy_helper
    proto = copy_proto(proto)
    graph = proto.graph
    inits = {i.name: numpy_helper.to_array(i) for i in graph.initializer}
    nodes = []
    for node in graph.node:
        if node.op_type != "Quant":
            if node.op_type in QUANT_OPS:
                raise InputError(f"{node.name}: {node.op_type} nodes cannot be lowered to standard ONNX")
            nodes.append(node)
            continue
        x, scale, zero, bits = node.input
        if bits not in inits:
            raise InputError(f"Quant node {node.name}: its bit width must be a constant")
        signed, narrow, mode = quant_attributes(node)
        if mode not in ("ROUND", "HALF_EVEN", "FLOOR"):
            raise InputError(f"Quant node {node.name}: rounding mode {mode} is not lowered")
        width = int(np.asarray(inits[bits]).reshape(-1)[0])
        lo = -(2 ** (width - 1)) + (1 if narrow else 0) if signed else 0
        hi = 2 ** (width - 1) - 1 if signed else 2 ** width - 1 - (1 if narrow else 0)
        p = f"{node.name or node.output[0]}_lowered"
        graph.initializer.extend([numpy_helper.from_array(np.array(lo, np.float32), f"{p}_lo"),
                                  numpy_helper.from_array(np.array(hi, np.float32), f"{p}_hi")])
        nodes += [helper.make_node("Div", [x, scale], [f"{p}_div"]),
                  helper.make_node("Add", [f"{p}_div", zero], [f"{p}_add"]),
                  helper.make_node("Clip", [f"{p}_add", f"{p}_lo", f"{p}_hi"], [f"{p}_clip"]),
                  helper.make_node("Floor" if mode == "FLOOR" else "Round", [f"{p}_clip"], [f"{p}_int"]),
                  helper.make_node("Sub", [f"{p}_int", zero], [f"{p}_sub"]),
                  helper.make_node("Mul", [f"{p}_sub", scale], [node.output[0]])]
    del graph.node[:]
    graph.node.extend(nodes)
    used = {name for node in nodes for name in node.input}
    unused = [i for i in graph.initializer if i.name not in used]  # onnxruntime warns on each
    for init in unused:
        graph.initializer.remove(init)
    for imp in list(proto.opset_import):
        if imp.domain not in ("", "ai.onnx"):
            proto.opset_import.remove(imp)
    onnx.checker.check_model(proto)
    return proto


def copy_proto(proto):
    """A deep copy of a ModelProto."""
    import onnx
    out = onnx.ModelProto()
    out.CopyFrom(proto)
    return out


def run_qonnx(path, x: np.ndarray, logits: bool = False) -> np.ndarray:
    """Outputs of a QONNX graph on inputs x, run by QONNX's own executor (qonnx.core.onnx_exec);
    with logits, the input of its final Softmax instead (the last fixed-point values)."""
    from qonnx.core.modelwrapper import ModelWrapper
    from qonnx.core.onnx_exec import execute_onnx
    from qonnx.transformation.change_batchsize import ChangeBatchSize
    from qonnx.transformation.infer_shapes import InferShapes
    model = ModelWrapper(str(path))
    if logits:
        nodes = list(model.graph.node)
        at = max((k for k, n in enumerate(nodes) if n.op_type == "Softmax"), default=None)
        if at is None or len(nodes) - at > 2:
            raise InputError(f"{path}: the graph does not end in Softmax; there are no logits to compare")
        model.graph.output[0].name = nodes[at].input[0]
        for node in nodes[at:]:  # the Softmax, and a quantizer of the probabilities after it
            model.graph.node.remove(node)
    # the executor checks input shapes strictly: fix the symbolic batch to this batch
    model = model.transform(ChangeBatchSize(len(x))).transform(InferShapes())
    name_in, name_out = model.graph.input[0].name, model.graph.output[0].name
    return np.asarray(execute_onnx(model, {name_in: np.asarray(x, np.float32)})[name_out])
