"""`edge-asr build`: the vendor flow (HLS synthesis -> IP export -> block design -> bitstream).

Needs Vivado/Vitis HLS on PATH. Without them it stops at once with one line naming the
missing tool and where the generated project is; the rest of edge-asr does not need them.
"""

from __future__ import annotations

import contextlib
import io
import json
import shutil
from pathlib import Path

from ..errors import ToolMissingError
from ..ir.design import Design
from ..ir.manifest import write_manifest

# hls4ml 1.3 runs `vitis_hls`/`vitis-run` (Vitis backend) or `vivado_hls` + `vivado`
# (VivadoAccelerator backend, block design and bitstream).
TOOLS = {"Vitis": [("vitis_hls", "vitis-run")], "VivadoAccelerator": [("vivado_hls", "vitis_hls"), ("vivado",)]}


def missing_tools(hls_backend: str) -> list[str]:
    """The vendor tools hls4ml's `hls_backend` runs that are not on PATH."""
    missing = []
    for alternatives in TOOLS.get(hls_backend, []):
        if not any(shutil.which(t) for t in alternatives):
            missing.append(" or ".join(alternatives))
    return missing


def build(design_dir: str | Path, log=print) -> Path:
    """Run the vendor flow on a design folder; the products land in it and the manifest is
    rewritten. Raises ToolMissingError (one line) when Vivado/Vitis are not on PATH."""
    design_dir = Path(design_dir)
    design = Design.load(design_dir, kind="design")
    hls_backend = design.hls_backend
    missing = missing_tools(hls_backend)
    if missing:
        raise ToolMissingError(f"{missing[0]} not found on PATH: the vendor flow needs AMD Vivado/Vitis; the "
                               f"generated project is in {design_dir / 'hls'} (run `edge-asr build` where they are "
                               "installed)")
    from hls4ml.utils.serialization import deserialize_model

    from . import hls4ml_fixes
    with contextlib.redirect_stdout(io.StringIO()) as out:
        hm = deserialize_model(design_dir / "hls4ml_model.fml", output_dir=design_dir / "hls" / "tb_data")
        hm.config.config["OutputDir"] = str(design_dir / "hls")
        hls4ml_fixes.write_project(hm, hls4ml_fixes.stream_depths(design, design.data.get("fifo_depths", {})))
        if hls_backend == "VivadoAccelerator":
            report = hm.build(csim=False, synth=True, export=True, bitfile=True)
        else:
            report = hm.build(csim=False, synth=True, export=True)
    (design_dir / "build.log").write_text(out.getvalue() + "\n" + json.dumps(report, default=str, indent=1))
    write_manifest(design_dir, "design")  # the design now holds the build's products
    log(f"built {design_dir}; report in {design_dir / 'build.log'}")
    return design_dir
