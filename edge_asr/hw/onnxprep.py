"""Prepare a float ONNX graph for hls4ml's ONNX frontend, as small named passes.

Each pass takes a qonnx ModelWrapper and returns a new one, leaving its input as it was
(tests/test_convert.py holds every pass to that). `prepare()` composes them:
fix the batch size to 1, QONNX cleanup, channels-last conversion, Gemm -> MatMul + Add,
cleanup again. `check_supported()` runs first and names every node hls4ml cannot take.
"""

from __future__ import annotations

from pathlib import Path

from ..errors import InputError

# Ops that the passes below remove or rewrite before hls4ml sees the graph.
REWRITTEN_OPS = {"Gemm", "Identity", "Dropout", "Constant", "Quant", "QuantizeLinear", "DequantizeLinear"}


class UnsupportedOpsError(InputError):
    """The graph has ops hls4ml 1.3 cannot convert; the message names every one."""


def load(path: str | Path):
    """A QONNX ModelWrapper of an ONNX file; InputError when it cannot be read."""
    import onnx
    from qonnx.core.modelwrapper import ModelWrapper
    try:
        model = ModelWrapper(onnx.load(str(path)))
    except Exception as exc:  # onnx raises DecodeError, OSError, ValueError, ... for an unreadable file
        raise InputError(f"{path}: not a readable ONNX model ({str(exc).splitlines()[0]})") from exc
    check_finite(model, str(path))
    return model


def copy_model(model):
    """A deep copy of a ModelWrapper, for a pass that edits the graph it returns."""
    import copy

    from qonnx.core.modelwrapper import ModelWrapper
    return ModelWrapper(copy.deepcopy(model.model))


def check_finite(model, source: str) -> None:
    """Raise InputError naming the first weight tensor (initializer) holding NaN or Inf: no
    fixed-point type can hold it, and it would poison every output."""
    import numpy as np
    from onnx import numpy_helper
    for init in model.graph.initializer:
        values = numpy_helper.to_array(init)
        if values.dtype.kind == "f" and not np.isfinite(values).all():
            bad = int(np.count_nonzero(~np.isfinite(values)))
            raise InputError(f"{source}: weight tensor {init.name!r} holds {bad} NaN/Inf value(s); retrain or "
                             "re-export the model")


QDQ_OPS = {"QuantizeLinear", "DequantizeLinear"}


def qdq_to_quant(model):
    """Pass: QuantizeLinear -> (Clip) -> DequantizeLinear chains, as onnxruntime's
    quantization tools write them, fused into QONNX Quant nodes (QONNX's QCDQToQuant), so
    that a QDQ model converts the QONNX way: its types from its quantizers."""
    if not any(n.op_type in QDQ_OPS for n in model.graph.node):
        return copy_model(model)
    from qonnx.transformation.infer_shapes import InferShapes
    from qonnx.transformation.qcdq_to_qonnx import QCDQToQuant
    # QCDQToQuant reads each integer type (a quantized weight's, a QuantizeLinear's output)
    # from value_info
    model = describe_initializers(model.transform(InferShapes())).transform(QCDQToQuant())
    left = sorted({n.op_type for n in model.graph.node if n.op_type in QDQ_OPS})
    if left:
        raise InputError(f"{', '.join(left)} nodes remain after fusing QuantizeLinear/DequantizeLinear pairs into "
                         "Quant nodes; quantize with constant scales and zero points (onnxruntime quantize_static)")
    return model


MOVES_VALUES = {"MaxPool", "Flatten", "Reshape", "Transpose"}  # outputs are some of the inputs' values


def _quant_params(model, node) -> tuple:
    import numpy as np
    consts = tuple(model.get_initializer(i) for i in node.input[1:])
    if any(c is None for c in consts):
        return (node.name,)  # unknown: equal to nothing else
    return tuple(np.asarray(c).tobytes() for c in consts) + tuple(sorted(
        (a.name, a.i) for a in node.attribute if a.type == a.INT))


def simplify_quant_nodes(model):
    """Pass, on QONNX graphs: remove what hls4ml 1.3 cannot take but does not change values.

    - A Quant of a tensor that a Quant with the same parameters made, through ops that only
      move values (MaxPool, Flatten, ...): every value is on its grid already. onnxruntime's
      QDQ tools quantize every op's output, and these stop hls4ml's scale propagation and
      QONNX's channels-last Flatten.
    - A Quant after the final Softmax: the design's Softmax has its own probability type.
    - A Quant on a bias whose scale is not a power of two (onnxruntime's int32 bias at the
      input scale x the weight scale): replaced by the float values it stands for, which
      hls4ml then types as a plain bias (qonnx_types: 16 bits) - the one place the design
      may differ from the graph by a rounding.
    """
    import numpy as np
    from onnx import numpy_helper
    model = copy_model(model)
    graph = model.graph
    out_name = graph.output[0].name
    for node in list(graph.node):
        if node.op_type != "Quant":
            continue
        src = model.find_producer(node.input[0])
        while src is not None and src.op_type in MOVES_VALUES:
            src = model.find_producer(src.input[0])
        redundant = src is not None and src.op_type == "Quant" and _quant_params(model, src) == _quant_params(
            model, node) and model.find_producer(node.input[0]) is not src
        after_softmax = node.output[0] == out_name and (p := model.find_producer(node.input[0])) is not None \
            and p.op_type == "Softmax"
        if redundant or after_softmax:
            _bypass(model, node)
            continue
        value = model.get_initializer(node.input[0])
        scale = model.get_initializer(node.input[1])
        users = model.find_consumers(node.output[0]) or []
        is_bias = value is not None and users and all(
            (u.op_type in ("Conv", "Gemm") and list(u.input).index(node.output[0]) == 2) or u.op_type == "Add"
            for u in users)
        if is_bias and scale is not None and not np.all(np.log2(scale) == np.round(np.log2(scale))):
            from qonnx.custom_op.general.intquant import int_quant

            from .qonnx_types import quant_attributes
            signed, narrow, mode = quant_attributes(node)
            folded = int_quant(value, scale, model.get_initializer(node.input[2]),
                               model.get_initializer(node.input[3]), signed, narrow, mode)
            graph.initializer.append(numpy_helper.from_array(np.asarray(folded, np.float32), node.output[0]))
            graph.node.remove(node)
    return model


def _bypass(model, node) -> None:
    """Remove a one-input node, its consumers (or the graph output) reading its input."""
    graph = model.graph
    src, dst = node.input[0], node.output[0]
    if dst == graph.output[0].name:
        producer = model.find_producer(src)
        producer.output[list(producer.output).index(src)] = dst
        for other in graph.node:
            for k, name in enumerate(other.input):
                if name == src:
                    other.input[k] = dst
    else:
        for other in graph.node:
            for k, name in enumerate(other.input):
                if name == dst:
                    other.input[k] = src
    graph.node.remove(node)


def fix_batch_size(model):
    """Pass: set a symbolic or missing batch dimension to 1 on graph inputs and outputs."""
    model = copy_model(model)
    graph = model.model.graph
    for vi in list(graph.input) + list(graph.output):
        dims = vi.type.tensor_type.shape.dim
        if dims and (dims[0].dim_param or dims[0].dim_value <= 0):
            dims[0].ClearField("dim_param")
            dims[0].dim_value = 1
    # intermediate shapes recorded with the symbolic batch are re-inferred by cleanup
    del graph.value_info[:]
    return model


def cleanup(model):
    """Pass: QONNX's cleanup (shape inference, constant folding, unique names)."""
    from qonnx.util.cleanup import cleanup_model
    return cleanup_model(copy_model(model))  # it sets the Quant nodes' domain on the model it is given


def describe_initializers(model):
    """Pass: give every initializer a value_info entry (its shape and type).

    A QONNX weight Quant's scale, zero point and bit width are initializers without one,
    and two things then break: QONNX's GiveReadableTensorNames renames only described
    tensors, so after channels-last renumbers the nodes an old name (Quant_1_param1) can
    equal a new one and cleanup stops on "multiple get_by_name matches"; and hls4ml's ONNX
    reader looks every node input's shape up in value_info.
    """
    from onnx import helper
    model = copy_model(model)
    described = {v.name for v in model.graph.value_info} | {v.name for v in model.graph.input}
    for init in model.graph.initializer:
        if init.name not in described:
            model.graph.value_info.append(helper.make_tensor_value_info(init.name, init.data_type, list(init.dims)))
    return model


def to_channels_last(model):
    """Pass: QONNX's conversion to channels-last, the layout hls4ml's ONNX frontend takes."""
    from qonnx.transformation.channels_last import ConvertToChannelsLastAndClean
    return model.transform(ConvertToChannelsLastAndClean())


def gemm_to_matmul(model):
    """Pass: Gemm as MatMul + Add, which hls4ml's ONNX frontend maps to Dense."""
    import warnings

    from qonnx.transformation.gemm_to_matmul import GemmToMatMul
    with warnings.catch_warnings():
        # it warns for any Gemm newer than opset 9; opset 13's Gemm has the same semantics
        warnings.filterwarnings("ignore", message="The GemmToMatMul transformation only offers")
        return model.transform(GemmToMatMul())


def supported_ops() -> set[str]:
    """ONNX ops hls4ml 1.3 converts, plus the ones these passes rewrite away."""
    from hls4ml.converters import get_supported_onnx_layers
    return set(get_supported_onnx_layers()) | REWRITTEN_OPS


def check_supported(model, source: str, original=None) -> None:
    """Raise one error naming every node whose op neither our passes nor hls4ml handle.

    `model` is the cleaned graph (constant subgraphs folded away); nodes are named as in
    `original`, the user's graph, where one is given.
    """
    ok = supported_ops()
    bad_ops = {n.op_type for n in model.graph.node if n.op_type not in ok}
    nodes = original.graph.node if original is not None else model.graph.node
    bad = [(n.name or f"#{i}", n.op_type) for i, n in enumerate(nodes) if n.op_type in bad_ops]
    if bad:
        listed = ", ".join(f"{name} ({op})" for name, op in bad)
        recurrent = bad_ops & {"GRU", "LSTM", "RNN"}
        hint = ("GRU/LSTM -> Conv1d over time, for example" if recurrent else
                "with layers hls4ml maps: Conv, Gemm/MatMul, Relu, MaxPool, Softmax, BatchNormalization")
        raise UnsupportedOpsError(f"{source}: hls4ml 1.3 cannot convert {len(bad)} node(s): {listed}; "
                                  f"replace these layers ({hint})")


def check_fixed_input(model, source: str) -> None:
    """InputError when an input dimension other than the batch is symbolic or unknown: an
    FPGA dataflow design has one fixed input shape."""
    for vi in model.graph.input:
        dims = vi.type.tensor_type.shape.dim
        for k, d in list(enumerate(dims))[1:]:
            if d.dim_param or d.dim_value <= 0:
                raise InputError(f"{source}: input {vi.name!r} dimension {k} is {d.dim_param or 'unknown'}, not a "
                                 "number; export the model with a fixed input shape (one window)")


def input_shape(model) -> list[int]:
    """The graph's input shape; InputError unless it has exactly one input and one output."""
    graph = model.graph
    if len(graph.input) != 1 or len(graph.output) != 1:
        raise InputError("only graphs with one input and one output are supported")
    return [d.dim_value for d in graph.input[0].type.tensor_type.shape.dim]


def prepare(model, source: str):
    """The whole preparation; returns (prepared model, cleaned float model for calibration)."""
    original = model  # the passes leave it as it is: nodes are named as the user named them
    model = qdq_to_quant(fix_batch_size(model))
    check_fixed_input(model, source)
    model = cleanup(model)
    if any(n.op_type == "Quant" for n in model.graph.node):
        model = cleanup(simplify_quant_nodes(model))
    check_supported(model, source, original)
    float_model = model
    model = describe_initializers(cleanup(describe_initializers(gemm_to_matmul(to_channels_last(float_model)))))
    return model, float_model
