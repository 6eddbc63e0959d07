"""A first-order latency estimate of a design from design.json (no synthesis involved).

io_stream dataflow: each layer consumes its input stream one pixel (one packed element
vector) per initiation interval, II = reuse factor; Dense and Conv kernels add a pipeline
depth of about log2 of their inputs; a transpose buffers its whole input first. The
estimate sums the layers (no overlap between them), so it is an upper bound of the
dataflow latency under these assumptions, not a synthesis report.
"""

from __future__ import annotations

import math

from ..ir.design import Design, Layer


def layer_cycles(layer: Layer, reuse: int) -> int:
    """First-order cycles of one layer (an estimate, not synthesis)."""
    a = layer.attributes
    kind = layer.class_name
    out_pixels = layer.output_shape[0] if len(layer.output_shape) > 1 else 1
    rf = int(a.get("reuse_factor", reuse) or 1)
    if kind == "Conv1D":
        depth = math.ceil(math.log2(max(2, a["filt_width"] * a["n_chan"])))
        return a["in_width"] * rf + depth
    if kind == "Dense":
        return rf + math.ceil(math.log2(max(2, a["n_in"])))
    if kind == "Pooling1D":
        return a["n_in"]
    if kind == "Transpose":
        n = 1
        for d in layer.output_shape:
            n *= d
        return n
    if kind == "Softmax":
        return 8  # max, table lookups, adder tree, multiply: a handful of pipeline stages
    return out_pixels


def estimate_latency(design: Design) -> dict:
    """The design's first-order latency: cycles, clock, microseconds, cycles per layer."""
    reuse = design.reuse_factor
    per_layer = {layer.name: layer_cycles(layer, reuse) for layer in design.layers}
    cycles = sum(per_layer.values())
    period = design.clock_period_ns
    return {"cycles": cycles, "clock_ns": period, "latency_us": cycles * period / 1000, "per_layer": per_layer}
