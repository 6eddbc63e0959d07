"""Workarounds for gaps in hls4ml 1.3.0's ONNX frontend, applied to its handler table.

Each fix is idempotent and has a test (tests/test_convert.py):

- 1-D pooling (MaxPool/AveragePool on a channels-last (N, W, C) tensor): the parser reads
  the channel count and width from the channels-first positions (swapped) and never sets
  `pad_left`/`pad_right`, so conversion fails with `Attribute "pad_left" ... not set`, or,
  with the attributes supplied, computes the wrong output width.
- the board wrapper header's stream types (see fix_written_project).
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

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
    return fixed


def write_project(hls_model) -> list[str]:
    """hls_model.write() followed by fix_written_project()."""
    hls_model.write()
    return fix_written_project(hls_model.config.get_output_dir(), hls_model.config.get_project_name())
