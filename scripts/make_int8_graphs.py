#!/usr/bin/env python3
"""Write the onnxruntime graphs of the simulator's 8-bit input path (edge_asr/sim/int8.py).

    .venv/bin/python scripts/make_int8_graphs.py [--out edge_asr/sim]

Two graphs, with symbolic sizes and every constant a graph input, so one file serves
every design: x (float32, batch x n_in) -> QuantizeLinear(scale, zero) -> uint8 codes
[-> Clip(lowest, highest) for types narrower than 8 bits] -> MatMulInteger(codes,
weights int8, zero) -> int32 product; outputs the codes and the product. They are
shipped because building them needs the onnx package, which the base install lacks;
tests/test_sim_int8.py checks the shipped files against this script's output.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import onnx
from onnx import TensorProto, helper

ROOT = Path(__file__).resolve().parents[1]


def graph(clip: bool) -> onnx.ModelProto:
    """The quantize-then-multiply graph, with or without the Clip to a narrower type."""
    def scalar(name, kind):
        return helper.make_tensor_value_info(name, kind, [])
    nodes = [helper.make_node("QuantizeLinear", ["x", "scale", "zero"], ["wide" if clip else "codes"])]
    inputs = [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", "n_in"]),
              scalar("scale", TensorProto.FLOAT), scalar("zero", TensorProto.UINT8)]
    if clip:
        nodes.append(helper.make_node("Clip", ["wide", "lowest", "highest"], ["codes"]))
        inputs += [scalar("lowest", TensorProto.UINT8), scalar("highest", TensorProto.UINT8)]
    nodes.append(helper.make_node("MatMulInteger", ["codes", "weights", "zero"], ["product"]))
    inputs.append(helper.make_tensor_value_info("weights", TensorProto.INT8, ["n_in", "n_out"]))
    outputs = [helper.make_tensor_value_info("codes", TensorProto.UINT8, ["batch", "n_in"]),
               helper.make_tensor_value_info("product", TensorProto.INT32, ["batch", "n_out"])]
    model = helper.make_model(helper.make_graph(nodes, "edge_asr_int8_input", inputs, outputs),
                              opset_imports=[helper.make_opsetid("", 13)], producer_name="edge-asr")
    model.ir_version = 8  # onnxruntime 1.17 (the oldest the base install allows) reads it
    onnx.checker.check_model(model)
    return model


GRAPHS = {"int8_quantize_matmul.onnx": False, "int8_quantize_clip_matmul.onnx": True}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=ROOT / "edge_asr" / "sim")
    out = ap.parse_args().out
    out.mkdir(parents=True, exist_ok=True)
    for name, clip in GRAPHS.items():
        (out / name).write_bytes(graph(clip).SerializeToString())
        print(out / name)


if __name__ == "__main__":
    main()
