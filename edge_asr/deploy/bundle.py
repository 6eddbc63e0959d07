"""`edge-asr bundle`: what a board needs, in one verified folder.

    BUNDLE_DIR/
      <name>.bit + <name>.hwh   the bitstream and its hardware description (PYNQ wants the
                                same base name). A simulation-only bundle has no .bit, and
                                its .hwh is written by edge-asr (deploy/hwh.py): the block
                                design the board project builds, for the simulated device
      design.json               the hardware IR (types, weights, tables)
      feature.json              front-end configuration, labels, sample rate
      bundle.json               board, part, stream types, whether it is simulation-only
      driver/edge_asr/          the board-side code: driver, bundle check, stream packing,
                                fixed-point coding, simulator, recognizer (numpy + pynq;
                                soundfile + soxr for audio files)
      manifest.json             sha256 and size of every file

Nothing is pickled. `verify_bundle` (standard library + json) checks the manifest and the
board before anything is loaded: a missing, altered or unexpected file, or a bundle for
another board or part, is refused.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from ..atomic import atomic_dir, refuse_existing
from ..errors import EdgeAsrError, InputError
from ..ir.design import DESIGN_FILE, Design
from ..ir.manifest import verify_manifest, write_manifest
from .hwh import write_hwh

BUNDLE_SCHEMA_VERSION = 1

# What runs on a board image, where torch, onnx and hls4ml are absent and numpy is older:
# these packages whole, with the package root's foundations (errors, atomic output,
# extras, resources) and the CLI. tests/test_layout.py checks what they import.
BOARD_PACKAGES = ("frontend", "ir", "sim", "runtime", "deploy", "cli")
BOARD_ROOT_MODULES = ("__init__.py", "errors.py", "atomic.py", "extras.py", "resources.py")


class BundleError(EdgeAsrError):
    """A bundle that must not be loaded."""


def _find_build_outputs(design_dir: Path) -> tuple[Path | None, Path | None]:
    """The bitstream and .hwh `edge-asr build` left in the design, or (None, None).

    Vivado writes them apart: project_1.runs/impl_1/design_1_wrapper.bit and
    .../bd/design_1/hw_handoff/design_1.hwh (under .srcs or .gen by version). A bitstream
    without a hardware description is an error, not a simulation-only bundle."""
    bits = sorted(design_dir.rglob("*.bit"))
    if not bits:
        return None, None
    bit = bits[-1]
    hwhs = sorted(design_dir.rglob(bit.stem + ".hwh")) or sorted(design_dir.rglob("*.hwh"))
    handoff = [h for h in hwhs if h.parent.name == "hw_handoff"]
    if not hwhs:
        raise InputError(f"{bit}: found a bitstream but no .hwh in {design_dir}; give --bit and --hwh")
    return bit, (handoff or hwhs)[0]


SYNC_WORD = bytes.fromhex("AA995566")  # every Xilinx configuration bitstream carries it near its start


def check_bitstream(path: Path) -> None:
    """Refuse a file that is not a Xilinx bitstream (no sync word in its first 64 KiB)."""
    with path.open("rb") as f:
        head = f.read(1 << 16)
    if SYNC_WORD not in head:
        raise BundleError(f"{path}: not a Xilinx bitstream (no sync word AA995566); give the .bit Vivado wrote")


def check_hwh(path: Path, design: Design) -> None:
    """Refuse a .hwh that is not a hardware description the driver can use: XML with an AXI
    DMA (whose stream widths the driver then checks against the design)."""
    import xml.etree.ElementTree as ET
    try:
        root = ET.parse(path).getroot()
    except (ET.ParseError, UnicodeDecodeError) as exc:
        raise BundleError(f"{path}: not a hardware description (.hwh is XML; {exc})") from exc
    if not any(m.get("MODTYPE") == "axi_dma" for m in root.iter("MODULE")):
        raise BundleError(f"{path}: describes no AXI DMA; give the .hwh of the block design built from {design.name}")


def _copy_board_modules(dest: Path) -> None:
    package = Path(__file__).resolve().parents[1]
    patterns = list(BOARD_ROOT_MODULES) + [f"{pkg}/**/*.py" for pkg in BOARD_PACKAGES]
    for pattern in patterns:
        for src in sorted(package.glob(pattern)):
            target = dest / "edge_asr" / src.relative_to(package)
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(src, target)


def write_bundle(design_dir: str | Path, out: str | Path, bit: str | Path | None = None,
                 hwh: str | Path | None = None, force: bool = False, log=print) -> Path:
    """Gather what a board needs into a verified bundle folder (see the module docstring).

    Args:
        design_dir: a design folder made by `edge-asr convert` (its manifest is checked).
        out: the bundle folder to write (refused if it exists, unless force).
        bit, hwh: a bitstream and its hardware description; both or neither. Without them the
            build's products are looked for in the design, else the bundle is simulation-only.
        log: where the one-line summary goes.

    Returns:
        The bundle folder.

    Raises:
        InputError: only one of bit/hwh, a missing file; DesignError, ManifestError: the design
        does not load; OutputExistsError: out exists without force.
    """
    design_dir, out = Path(design_dir), Path(out)
    refuse_existing(out, force)
    design = Design.load(design_dir, kind="design")
    meta = json.loads((design_dir / "model.json").read_text())
    if (bit is None) != (hwh is None):
        raise InputError("give both --bit and --hwh, or neither")
    if bit is None:
        found_bit, found_hwh = _find_build_outputs(design_dir)
    else:
        found_bit, found_hwh = Path(bit), Path(hwh)
        for p in (found_bit, found_hwh):
            if not p.is_file():
                raise InputError(f"{p}: no such file")
    sim_only = found_bit is None
    if sim_only and design.hls_backend != "VivadoAccelerator":
        raise BundleError(f"{design_dir}: converted for {design.board or 'no board'}, for which hls4ml 1.3 makes the "
                          "HLS IP alone and no block design, so there is no .hwh to describe; build the IP into a "
                          "block design of yours, then bundle with --bit and --hwh")
    if not sim_only:
        check_bitstream(found_bit)
        check_hwh(found_hwh, design)
    name = design.name
    with atomic_dir(out) as tmp:
        shutil.copyfile(design_dir / DESIGN_FILE, tmp / DESIGN_FILE)
        (tmp / "feature.json").write_text(json.dumps({
            "feature": meta.get("feature"), "labels": meta.get("labels"),
            "sample_rate": meta.get("sample_rate"), "operating_point": meta.get("operating_point")},
            indent=1) + "\n")
        if sim_only:
            (tmp / f"{name}.hwh").write_text(write_hwh(design))
        else:
            shutil.copyfile(found_bit, tmp / f"{name}.bit")
            shutil.copyfile(found_hwh, tmp / f"{name}.hwh")
        _copy_board_modules(tmp / "driver")
        (tmp / "bundle.json").write_text(json.dumps({
            "schema_version": BUNDLE_SCHEMA_VERSION, "name": name,
            "board": design.board, "part": design.part,
            "io_type": design.io_type,
            "input": design.data["input"], "output": design.data["output"],
            "simulation_only": sim_only,
            "bitstream": None if sim_only else f"{name}.bit",
            "hwh": f"{name}.hwh",
            "hwh_source": "edge-asr (the block design of the board project)" if sim_only else "vendor flow",
            "driver": "driver/edge_asr (PYTHONPATH=driver; from edge_asr.deploy.driver import EdgeAsrOverlay)",
            "note": ("no bitstream: built without Vivado; runs against the simulated device only"
                     if sim_only else "bitstream and hwh from the vendor flow"),
        }, indent=1) + "\n")
        write_manifest(tmp, "bundle")
    log(f"wrote {'simulation-only ' if sim_only else ''}bundle {out}"
        + (" (no bitstream: run `edge-asr build` where Vivado is installed, then bundle again)" if sim_only else ""))
    return out


def verify_bundle(bundle_dir: str | Path, board: str | None = None, part: str | None = None) -> dict:
    """Check the manifest and the target; returns bundle.json. Raises BundleError."""
    bundle_dir = Path(bundle_dir)
    try:
        verify_manifest(bundle_dir, "bundle")
    except EdgeAsrError as exc:
        raise BundleError(str(exc)) from exc
    info = json.loads((bundle_dir / "bundle.json").read_text())
    if board is not None and info.get("board") != board:
        raise BundleError(f"{bundle_dir}: bundle is for board {info.get('board')}, this is {board}; "
                          "convert and bundle for this board")
    if part is not None and info.get("part") != part:
        raise BundleError(f"{bundle_dir}: bundle is for part {info.get('part')}, this is {part}")
    suffixes = (".hwh",) if info.get("simulation_only") else (".bit", ".hwh")
    for suffix in suffixes:
        if not (bundle_dir / f"{info['name']}{suffix}").is_file():
            raise BundleError(f"{bundle_dir}: {info['name']}{suffix} missing")
    return info
