"""An ONNX handler of our own in hls4ml's place: 1-D pooling on channels-last tensors.

hls4ml 1.3.0's pooling parser reads a 1-D MaxPool/AveragePool's channel count and width
from the channels-first positions (swapped) of a channels-last (N, W, C) tensor and never
sets `pad_left`/`pad_right`: conversion fails with `Attribute "pad_left" ... not set`, or,
with the attributes supplied, computes the wrong output width.
"""

from __future__ import annotations

from .hls4ml_repair import HLS4ML_VERSION, Repair

POOL_1D = Repair("1-D pooling parser (channels-last widths, pads)", "parser", HLS4ML_VERSION,
                 "none found for MaxPool; related: fastmachinelearning/hls4ml#1458 (1-D AveragePool through the "
                 "same parser, closed)")
POOL_OPS = ("MaxPool", "AveragePool")


def _fixed_pool_parser(original):
    def parse(node, input_names, input_shapes, graph):
        layer = original(node, input_names, input_shapes, graph)
        if layer["class_name"].endswith("Pooling1D"):
            pads = [int(p) for p in (layer.get("pads") or [0, 0])]
            layer["pad_left"], layer["pad_right"] = pads[0], pads[-1]
            layer["n_in"], layer["n_filt"] = int(input_shapes[0][1]), int(input_shapes[0][2])
            dilation = int((layer.get("dilations") or [1])[0])
            span = (layer["pool_width"] - 1) * dilation + 1
            layer["n_out"] = (layer["n_in"] + sum(pads) - span) // layer["stride_width"] + 1
        return layer

    parse.edge_asr_fixed = True
    parse.__wrapped__ = original
    return parse


def register() -> None:
    """Register our pooling parsers with hls4ml (idempotent)."""
    import importlib
    # the module, not the function hls4ml.converters exports under the same name
    onnx_to_hls = importlib.import_module("hls4ml.converters.onnx_to_hls")
    for op in POOL_OPS:
        original = onnx_to_hls.layer_handlers[op]
        if getattr(original, "edge_asr_fixed", False):
            continue
        # hls4ml registers its own parser for these ops when it is imported, and its
        # register_onnx_layer_handler refuses an op that has one ("Layer MaxPool already
        # registered"): ours must take the place of hls4ml's, so hls4ml's is taken out first.
        del onnx_to_hls.layer_handlers[op]
        onnx_to_hls.register_onnx_layer_handler(op, _fixed_pool_parser(original))
