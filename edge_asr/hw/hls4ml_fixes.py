"""Workarounds for gaps in hls4ml 1.3.0's ONNX frontend, applied to its handler table.

Each fix is idempotent and has a test (tests/test_convert.py):

- 1-D pooling (MaxPool/AveragePool on a channels-last (N, W, C) tensor): the parser reads
  the channel count and width from the channels-first positions (swapped) and never sets
  `pad_left`/`pad_right`, so conversion fails with `Attribute "pad_left" ... not set`, or,
  with the attributes supplied, computes the wrong output width.
- the board wrapper header's stream types, and the DMA widths in project.tcl (swapped, and
  not rounded to whole bytes): see fix_written_project.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

from ..resources import fill_template, hls_source

_APPLIED = False


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


def apply() -> None:
    """Patch hls4ml's ONNX handler table (once per process)."""
    global _APPLIED
    if _APPLIED:
        return
    import hls4ml.converters  # noqa: F401  (registers the handlers)
    handlers = sys.modules["hls4ml.converters.onnx_to_hls"].layer_handlers
    for op in ("MaxPool", "AveragePool"):
        if not getattr(handlers[op], "edge_asr_fixed", False):
            handlers[op] = _fixed_pool_parser(handlers[op])
    _APPLIED = True


_AXI_TYPEDEF = re.compile(r"typedef\s+(u?)fixed<(\d+),(-?\d+),(\w+),(\w+),(\d+)>\s+(T_in|T_out);")


def _cpp_axi_type(m: re.Match) -> str:
    u, w, i, q, o, n, name = m.groups()
    base = "ap_ufixed" if u else "ap_fixed"
    return f"typedef {base}<{w},{i},AP_{q},AP_{o},{n}> {name};"


def fix_written_project(hls_dir: str | Path, project_name: str) -> list[str]:
    """Repair what hls4ml 1.3 writes for a board project; returns what was fixed.

    - `<project>_axi.h` declares the AXI-stream element types with hls4ml's own type
      spelling (`typedef fixed<16,5,TRN,WRAP,0> T_in;`), which is not C++: the wrapper
      fails to compile whenever the stream type is fixed point rather than float.
    """
    fixed: list[str] = []
    axi_h = Path(hls_dir) / "firmware" / f"{project_name}_axi.h"
    if axi_h.is_file():
        text = axi_h.read_text()
        new = _AXI_TYPEDEF.sub(_cpp_axi_type, text)
        if new != text:
            axi_h.write_text(new)
            fixed.append(f"{axi_h.name}: AXI stream typedefs")
        fixed += _fix_dma_widths(Path(hls_dir), new)
    return fixed


_STREAM_WIDTH = re.compile(r"typedef\s+ap_u?(?:fixed|int)<(\d+)[^>]*>\s+(T_in|T_out);")


def _fix_dma_widths(hls_dir: Path, axi_header: str) -> list[str]:
    """project.tcl: hls4ml writes `bit_width_hls_output {in_bit}` and `bit_width_hls_input
    {out_bit}` (swapped), and both from the unrounded type widths, while the IP's stream
    words are the byte-rounded T_in/T_out. The block design sizes the AXI DMA from these."""
    widths = {name: int(w) for w, name in _STREAM_WIDTH.findall(axi_header)}
    tcl = hls_dir / "project.tcl"
    if not tcl.is_file() or set(widths) != {"T_in", "T_out"}:
        return []
    text = tcl.read_text()
    new = re.sub(r"set bit_width_hls_output \S+", f"set bit_width_hls_output {widths['T_out']}", text)
    new = re.sub(r"set bit_width_hls_input \S+", f"set bit_width_hls_input {widths['T_in']}", new)
    fixed = []
    if new != text:
        tcl.write_text(new)
        fixed.append("project.tcl: DMA stream widths")
    return fixed + _install_block_design(hls_dir, widths["T_in"])


def _install_block_design(hls_dir: Path, in_bits: int) -> list[str]:
    """design.tcl: our own block design (hls/<board>/design.tcl.in) in place of hls4ml's
    template, which sets the DMA's memory-map width (c_m_axi_mm2s_data_width) to the
    stream width, 16 for our designs, where PG021 allows 32..1024. Ours sets the width the
    .hwh of a simulation-only bundle describes (deploy/hwh.py)."""
    from ..deploy.hwh import mm_data_width
    tcl = hls_dir / "design.tcl"
    if not tcl.is_file():
        return []
    board = next((b for b in ("pynq-z2",) if f":{b}:" in tcl.read_text()), None)
    if board is None:
        return []
    text = fill_template(hls_source(board, "design.tcl.in").read_text(), {"MM2S_DATA_WIDTH": mm_data_width(in_bits)})
    if text == tcl.read_text():
        return []
    tcl.write_text(text)
    return [f"design.tcl: edge-asr's {board} block design"]


def _fix_softmax_inp_norm(hls_model) -> list[str]:
    """Make each softmax config use the inp_norm_t we set (apply_softmax_types): hls4ml's
    template writes its own ap_ufixed<W-1,I-1>, too narrow for x_max - x_i."""
    params = Path(hls_model.config.get_output_dir()) / "firmware" / "parameters.h"
    if not params.is_file():
        return []
    text = params.read_text()
    fixed = []
    for layer in hls_model.get_layers():
        t = layer.get_attr("inp_norm_t") if layer.class_name == "Softmax" else None
        if t is None:
            continue
        pattern = re.compile(r"(struct softmax_config%d\b.*?typedef\s+)[^;]*?(\s+inp_norm_t;)" % layer.index, re.S)
        text, n = pattern.subn(lambda m, name=t.name: m.group(1) + name + m.group(2), text, count=1)
        if n:
            fixed.append(f"parameters.h: {layer.name} inp_norm_t")
    params.write_text(text)
    return fixed


def write_project(hls_model, stream_depths: dict[str, int] | None = None) -> list[str]:
    """hls_model.write() followed by our repairs of what it wrote, and the stream depths the
    fit chose (`stream_depths`: C++ stream variable -> depth)."""
    hls_model.write()
    out_dir, project = hls_model.config.get_output_dir(), hls_model.config.get_project_name()
    return (fix_written_project(out_dir, project) + _fix_softmax_inp_norm(hls_model)
            + set_stream_depths(Path(out_dir) / "firmware" / f"{project}.cpp", stream_depths or {}))


def stream_depths(design, depths: dict[str, int]) -> dict[str, int]:
    """design.json's FIFO depths (by layer name) as the C++ stream variables hls4ml names
    after each layer's index (`layer<index>_out`)."""
    return {f"layer{layer.index}_out": depths[layer.name] for layer in design.layers if layer.name in depths}


_STREAM_PRAGMA = re.compile(r"(#pragma HLS STREAM variable=)(\w+)( depth=)(\d+)")


def set_stream_depths(top_cpp: Path, depths: dict[str, int]) -> list[str]:
    """Set the depth of each `#pragma HLS STREAM` in the top function hls4ml wrote, where
    `depths` names its variable (hls4ml makes every stream as deep as its whole tensor)."""
    if not depths or not top_cpp.is_file():
        return []
    text = top_cpp.read_text()
    seen = []

    def depth(m: re.Match) -> str:
        if m.group(2) not in depths:
            return m.group(0)
        seen.append(m.group(2))
        return f"{m.group(1)}{m.group(2)}{m.group(3)}{depths[m.group(2)]}"

    new = _STREAM_PRAGMA.sub(depth, text)
    if new != text:
        top_cpp.write_text(new)
    return [f"{top_cpp.name}: {len(seen)} stream depths"] if seen else []


SOFTMAX_TYPE_KEYS = ("exp_table", "inv_table", "inv_inp", "inp_norm")


def apply_softmax_types(hls_model, layer_config: dict) -> list[str]:
    """Give Softmax layers the table types their configuration asks for.

    hls4ml 1.3 takes a Softmax's `accum` from the configuration but leaves `exp_table`,
    `inv_table` and `inv_inp` at the backend defaults (fixed<18,8,RND,SAT>) whatever the
    configuration says, and derives `inp_norm_t` from the input type by itself.
    """
    from hls4ml.backends.fpga.fpga_types import APTypeConverter, HLSTypeConverter
    from hls4ml.model.types import NamedType
    to_hls = HLSTypeConverter(precision_converter=APTypeConverter())
    fixed = []
    hls_backend = hls_model.config.backend
    for layer in hls_model.get_layers():
        if layer.class_name != "Softmax":
            continue
        source = layer.name if layer.name in layer_config else next(
            (n for n in layer_config if layer.name.endswith(n)), None)
        precision = (layer_config.get(source) or {}).get("Precision", {})
        for key in SOFTMAX_TYPE_KEYS:
            if key in precision and precision[key] != "auto":  # 'auto': leave hls4ml's own choice
                p = hls_backend.convert_precision_string(precision[key])
                layer.set_attr(f"{key}_t", to_hls.convert(NamedType(f"{layer.name}_{key}_t", p)))
                fixed.append(f"{layer.name}.{key}_t")
    return fixed
