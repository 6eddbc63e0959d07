"""Repairs of the files hls4ml 1.3.0 writes, applied right after it writes them
(`write_project` in place of `ModelGraph.write()`), and the stream depths the fit chose.

- `<project>_axi.h` (board projects) declares the AXI-stream element types in hls4ml's own
  type spelling (`typedef fixed<16,5,TRN,WRAP,0> T_in;`), which is not C++.
- `project.tcl` sets the DMA's stream widths swapped and unrounded to whole bytes.
- `design.tcl`: hls4ml's block design sets the DMA's memory-map width to the stream width.
- `parameters.h`: a Softmax's `inp_norm_t` is hls4ml's own ap_ufixed<W-1,I-1>, too narrow.
"""

from __future__ import annotations

import re
from pathlib import Path

from ..resources import fill_template, hls_source
from .hls4ml_repair import HLS4ML_VERSION, Repair

NONE_FOUND = "none found in hls4ml's tracker"
AXI_TYPEDEFS = Repair("AXI-stream typedefs of the board wrapper", "writer", HLS4ML_VERSION,
                      NONE_FOUND + "; a neighbour, the wrapper's literal input_t, is fastmachinelearning/hls4ml#1495")
DMA_WIDTHS = Repair("DMA stream widths in project.tcl (swapped, unrounded)", "writer", HLS4ML_VERSION, NONE_FOUND)
BLOCK_DESIGN = Repair("DMA memory-map width of the pynq-z2 block design", "writer", HLS4ML_VERSION, NONE_FOUND)
SOFTMAX_INP_NORM = Repair("Softmax inp_norm_t in parameters.h", "writer", HLS4ML_VERSION, NONE_FOUND)
STREAM_DEPTHS = Repair("FIFO depths of the fit (hls4ml sizes every stream to its whole tensor)", "writer",
                       HLS4ML_VERSION, "not a fault: hls4ml 1.3 has no per-stream depth option")
REPAIRS = [AXI_TYPEDEFS, DMA_WIDTHS, BLOCK_DESIGN, SOFTMAX_INP_NORM, STREAM_DEPTHS]


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
    """Make each softmax config use the inp_norm_t set by hls4ml_passes.SoftmaxTableTypes: hls4ml's
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
