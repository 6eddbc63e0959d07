"""The streaming top level: the design's layers as one AXI-stream module, from design.json.

    s_axis (one input frame per beat) -> [line buffer -> conv kernel -> register]... with max
    pooling between -> flatten -> [dense kernel -> register]... -> m_axis (the logits, one
    beat per inference, TLAST on each)

The kernels are da4ml's modules (kernels.py); the rest are the hand-written templates in
hls/rtl/ (line buffer, also the flatten; max pooling; the register after a kernel). Handshake: one
enable for the whole pipeline, high while the output register is empty or being read
(`!m_axis_tvalid || m_axis_tready`); s_axis_tready is that enable, so backpressure stalls
every stage at once and no value is lost. Counting is per inference, so input gaps
are free. What it leaves to the host: the input Transpose (frames arrive channels-last,
one frame of n_features values per beat) and the Softmax (the stream carries the logits,
the values the simulator's last layer before Softmax gives). Ports are padded to whole
32-bit words, at least 96 bits, so that Verilator gives every port one C++ type.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from ..ir.design import Design, Layer
from ..resources import hls_source
from . import kernels as K

TEMPLATES = ("edge_asr_linebuf.v", "edge_asr_maxpool.v", "edge_asr_stage.v")
TOP = "edge_asr_top"


@dataclass
class Stream:
    """A stream between stages: its wires, values per beat and their width."""
    valid: str
    data: str
    n: int
    w: int
    signed: bool
    pixels: int  # beats per inference


def port_bits(bits: int) -> int:
    """A port's padded width: whole 32-bit words, at least 3 of them."""
    return max(96, 32 * math.ceil(bits / 32))


def _port(kifs) -> tuple[int, int, bool]:
    """(bits per value, fractional bits, signed) of a da4ml port: every value is packed at
    the widest of them."""
    k, i, f = (int(max(v)) for v in kifs)
    return k + i + f, f, bool(k)


def _kernel_out(k: K.Kernel, p: str, src_data: str) -> str:
    """Verilog instantiating kernel k on src_data, its outputs as codes of its output type in
    {p}_k: da4ml narrows a value whose range needs fewer bits than its type, so each is
    sign- or zero-extended (and its fraction padded) back to the type."""
    from da4ml.codegen.rtl.rtl_model import get_io_kifs
    kif_in, kif_out = get_io_kifs(K.trace(k))
    w_in, f_in, _ = _port(kif_in)
    if (w_in, f_in) != (k.in_type.width, k.in_type.fractional):
        raise K.UnsupportedKernelError(f"kernel {k.name}: da4ml made its input {w_in} bits with {f_in} fractional, "
                                       f"the type is {k.in_type.cpp()}; the top level cannot join it")
    w, f, signed = _port(kif_out)
    t = k.out_type
    pad = t.fractional - f
    if pad < 0 or w + pad > t.width:
        raise K.UnsupportedKernelError(f"kernel {k.name}: da4ml's output ({w} bits, {f} fractional) does not fit "
                                       f"its type {t.cpp()}")
    lines = [f"  wire [{k.n_out * w - 1}:0] {p}_n;\n  {k.name} {p}_kernel (.model_inp({src_data}), .model_out({p}_n));",
             f"  wire [{k.n_out * t.width - 1}:0] {p}_k;"]
    ext = t.width - w - pad
    for j in range(k.n_out):
        v = f"{p}_n[{j * w + w - 1}:{j * w}]"
        sign = f"{{{ext}{{{p}_n[{j * w + w - 1}]}}}}" if signed else f"{ext}'b0"
        parts = ([sign] if ext else []) + [v] + ([f"{pad}'b0"] if pad else [])
        lines.append(f"  assign {p}_k[{(j + 1) * t.width - 1}:{j * t.width}] = {{{', '.join(parts)}}};")
    return "\n".join(lines)


def _lower_kernel(layer: Layer, p: str, cur: Stream, k: K.Kernel) -> tuple[str, Stream]:
    """A Conv1D (behind its line buffer) or Dense kernel and the register stage after it."""
    out_w = k.out_type.width
    text = ""
    if layer.class_name == "Conv1D":
        a = layer.attributes
        if a.get("stride_width", 1) != 1 or a.get("pad_left", 0) or a.get("pad_right", 0):
            raise K.UnsupportedKernelError(f"layer {layer.name}: only stride-1 convolutions without padding "
                                           "have a line buffer yet")
        text = (f"  wire {p}_wv; wire [{a['filt_width'] * cur.n * cur.w - 1}:0] {p}_win;\n"
                f"  edge_asr_linebuf #({cur.n}, {cur.w}, {a['filt_width']}, {cur.pixels}) {p}_lb "
                f"(clk, rst, en, {cur.valid}, {cur.data}, {p}_wv, {p}_win);\n")
        src_valid, src_data, pixels = f"{p}_wv", f"{p}_win", a["out_width"]
    else:
        if cur.pixels != 1:
            raise K.UnsupportedKernelError(f"layer {layer.name}: a Dense layer on {cur.pixels} pixels "
                                           "(no Flatten before it)")
        src_valid, src_data, pixels = cur.valid, cur.data, 1
    bits = k.n_out * out_w
    text += (_kernel_out(k, p, src_data) + f"\n  wire {p}_v; wire [{bits - 1}:0] {p}_d;\n"
             f"  edge_asr_stage #({bits}) {p}_reg (clk, rst, en, {src_valid}, {p}_k, {p}_v, {p}_d);")
    return text, Stream(f"{p}_v", f"{p}_d", k.n_out, out_w, k.out_type.signed, pixels)


def _lower_maxpool(layer: Layer, p: str, cur: Stream) -> tuple[str, Stream]:
    """Max pooling over pairs of pixels."""
    a = layer.attributes
    if a.get("pool_width", 2) != 2 or a.get("stride_width", 2) != 2 or \
            "max" not in str(a.get("pool_op", "max")).lower():
        raise K.UnsupportedKernelError(f"layer {layer.name}: only max pooling over pairs is built yet")
    text = (f"  wire {p}_v; wire [{cur.n * cur.w - 1}:0] {p}_d;\n"
            f"  edge_asr_maxpool #({cur.n}, {cur.w}, {int(cur.signed)}, {cur.pixels}) {p}_pool "
            f"(clk, rst, en, {cur.valid}, {cur.data}, {p}_v, {p}_d);")
    return text, Stream(f"{p}_v", f"{p}_d", cur.n, cur.w, cur.signed, cur.pixels // 2)


def _lower_flatten(p: str, cur: Stream) -> tuple[str, Stream]:
    """A line buffer as long as the image: it fills once per inference, one vector out."""
    text = (f"  wire {p}_v; wire [{cur.pixels * cur.n * cur.w - 1}:0] {p}_d;\n"
            f"  edge_asr_linebuf #({cur.n}, {cur.w}, {cur.pixels}, {cur.pixels}) {p}_flat "
            f"(clk, rst, en, {cur.valid}, {cur.data}, {p}_v, {p}_d);")
    return text, Stream(f"{p}_v", f"{p}_d", cur.pixels * cur.n, cur.w, cur.signed, 1)


def _module_text(body: list[str], in_bits: int, in_port: int, out_bits: int, out_port: int, cur: Stream) -> str:
    """The top module around the stages: AXI-stream ports and one enable for every stage."""
    return f"""// edge-asr: the streaming top level of a design, written by edge_asr/rtl/top.py from design.json
`timescale 1ns / 1ps
module {TOP} (
    input clk,
    input rst,
    input [{in_port - 1}:0] s_axis_tdata,
    input s_axis_tvalid,
    output s_axis_tready,
    input s_axis_tlast,
    output [{out_port - 1}:0] m_axis_tdata,
    output m_axis_tvalid,
    input m_axis_tready,
    output m_axis_tlast
);
  // one enable for every stage: move while the output is empty or being read
  wire en = !m_axis_tvalid || m_axis_tready;
  assign s_axis_tready = en;
  wire [{in_bits - 1}:0] s_in = s_axis_tdata[{in_bits - 1}:0];
{chr(10).join(body)}
  assign m_axis_tvalid = {cur.valid};
  assign m_axis_tdata = {{{out_port - out_bits}'b0, {cur.data}}};
  assign m_axis_tlast = 1'b1;  // one beat per inference
endmodule
"""


def top_verilog(design: Design, kernels: list[K.Kernel]) -> tuple[str, dict]:
    """The top module's Verilog and a description of its ports (beats, widths, the
    layer whose values the output carries)."""
    by_first = {k.layers[0].name: k for k in kernels}
    fused = {layer.name for k in kernels for layer in k.layers[1:]}
    t_in = design.input_type
    shape = design.onnx_input_shape  # (features, frames): channels-first at the graph input
    cur = Stream("s_axis_tvalid", "s_in", shape[0], t_in.width, t_in.signed, shape[1])
    body: list[str] = []
    last_values: Layer | None = None
    for idx, layer in enumerate(design.layers):
        kind = layer.class_name
        if kind in ("Input", "InputLayer", "Transpose") or layer.name in fused:
            continue
        if kind == "Softmax":
            break
        p = f"l{idx}"
        if kind in ("Conv1D", "Dense"):
            text, cur = _lower_kernel(layer, p, cur, by_first[layer.name])
            last_values = by_first[layer.name].layers[-1]
        elif kind == "Pooling1D":
            (text, cur), last_values = _lower_maxpool(layer, p, cur), layer
        elif kind == "Reshape":
            (text, cur), last_values = _lower_flatten(p, cur), layer
        else:
            raise K.UnsupportedKernelError(f"layer {layer.name}: {kind} has no RTL yet (the top level builds "
                                           "Conv1D, Dense, ReLU/linear fused into them, max pooling, Flatten)")
        body.append(text)
    if last_values is None or cur.pixels != 1:
        raise K.UnsupportedKernelError("the design does not end in one vector per inference before its Softmax")
    in_bits, out_bits = shape[0] * t_in.width, cur.n * cur.w
    in_port, out_port = port_bits(in_bits), port_bits(out_bits)
    text = _module_text(body, in_bits, in_port, out_bits, out_port, cur)
    ports = {"in_values": shape[0], "in_width": t_in.width, "beats_per_inference": shape[1], "in_port": in_port,
             "out_values": cur.n, "out_width": cur.w, "out_signed": cur.signed, "out_port": out_port,
             "output_layer": last_values.name, "output_type": last_values.result_type().cpp()}
    return text, ports


def template_sources() -> list:
    """The hand-written templates (hls/rtl/)."""
    return [hls_source("rtl", name) for name in TEMPLATES]
