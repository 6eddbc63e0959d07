"""Deployment bundles: written, checked, and refused when tampered with or for another board."""

import json
import shutil
from pathlib import Path

import pytest

from edge_asr.cli import main
from edge_asr.deploy.bundle import BundleError, verify_bundle, write_bundle
from edge_asr.ir.manifest import write_manifest

from .conftest import SHIPPED_META

QUIET = dict(log=lambda m: None)


@pytest.fixture()
def bundle(tmp_path, shipped_design):
    return write_bundle(shipped_design, tmp_path / "b", **QUIET)


def test_simulation_only_bundle(bundle, capsys):
    info = verify_bundle(bundle, board="pynq-z2", part="xc7z020clg400-1")
    assert info["simulation_only"] and info["bitstream"] is None
    assert sorted(p.name for p in bundle.iterdir()) == ["bundle.json", "design.json", "driver", "edge_asr_net.hwh",
                                                        "feature.json", "manifest.json"]
    assert (bundle / "driver" / "edge_asr" / "deploy" / "driver.py").is_file()
    assert not list(bundle.glob("*.bit"))
    feature = json.loads((bundle / "feature.json").read_text())
    assert feature["labels"] == SHIPPED_META["labels"] and feature["feature"] == SHIPPED_META["feature"]
    assert main(["check", str(bundle)]) == 0
    assert "bundle" in capsys.readouterr().out


# the start of a Vivado .bit: its header, then dummy words, the bus-width pattern, the sync word
BITSTREAM = (b"\x00\x09\x0f\xf0\x0f\xf0\x0f\xf0\x0f\xf0\x00\x00\x01a\x00\x05top;\x00" + b"\xff" * 32
             + bytes.fromhex("000000BB11220044FFFFFFFFFFFFFFFFAA995566"))


def _board_hwh(design_dir) -> str:
    from edge_asr.deploy.hwh import write_hwh
    from edge_asr.ir import Design
    return write_hwh(Design.load(design_dir))


def test_with_bitstream(tmp_path, shipped_design):
    bit, hwh = tmp_path / "x.bit", tmp_path / "x.hwh"
    bit.write_bytes(BITSTREAM)
    hwh.write_text(_board_hwh(shipped_design))
    b = write_bundle(shipped_design, tmp_path / "b", bit=bit, hwh=hwh, **QUIET)
    info = verify_bundle(b)
    name = info["name"]
    assert not info["simulation_only"] and (b / f"{name}.bit").is_file() and (b / f"{name}.hwh").is_file()


@pytest.mark.parametrize("tamper", ["alter", "remove", "add", "manifest"])
def test_tampering_refused(bundle, tamper, capsys):
    if tamper == "alter":
        p = bundle / "design.json"
        p.write_text(p.read_text().replace('"io_stream"', '"io_parallel"'))
    elif tamper == "remove":
        (bundle / "feature.json").unlink()
    elif tamper == "add":
        (bundle / "evil.py").write_text("import os\n")
    else:
        (bundle / "manifest.json").write_text("{}")
    with pytest.raises(BundleError):
        verify_bundle(bundle)
    assert main(["check", str(bundle)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1


def test_other_board_or_part_refused(bundle):
    with pytest.raises(BundleError, match="board"):
        verify_bundle(bundle, board="zcu104")
    with pytest.raises(BundleError, match="part"):
        verify_bundle(bundle, part="xczu7ev-ffvc1156-2-e")


def test_bit_without_hwh(tmp_path, shipped_design, capsys):
    (tmp_path / "x.bit").write_bytes(b"1")
    assert main(["bundle", str(shipped_design), "--out", str(tmp_path / "b"), "--bit", str(tmp_path / "x.bit")]) == 2
    assert "both --bit and --hwh" in capsys.readouterr().err
    assert not (tmp_path / "b").exists()
    shutil.rmtree(tmp_path / "b", ignore_errors=True)


def test_generated_hwh_describes_the_board_project(bundle):
    """The .hwh of a simulation-only bundle: the DMA and core design.tcl creates, with the
    stream widths of the design (pynq's own parser reads it in tests/board)."""
    import xml.etree.ElementTree as ET
    root = ET.parse(bundle / "edge_asr_net.hwh").getroot()
    mods = {m.get("FULLNAME"): m for m in root.iter("MODULE")}
    assert set(mods) == {"/processing_system7_0", "/hier_0/axi_dma_0", "/hier_0/edge_asr_net_axi_0"}
    dma = {p.get("NAME"): p.get("VALUE") for p in mods["/hier_0/axi_dma_0"].iter("PARAMETER")}
    assert dma["c_include_sg"] == "0" and dma["c_m_axis_mm2s_tdata_width"] == "16"
    assert dma["c_s_axis_s2mm_tdata_width"] == "16" and dma["c_m_axi_mm2s_data_width"] == "32"
    assert root.find("SYSTEMINFO").get("DEVICE") == "7z020"


def test_recognize_pynq_backend_without_pynq(bundle, capsys):
    assert main(["recognize", "--bundle", str(bundle), "x.wav"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "pynq" in err
    assert "make board-setup" in err  # the Makefile's target: board-venv never existed
    # a bundle given as a design is named as a bundle, not as a design "converted from a bare .onnx"
    assert main(["recognize", "--design", str(bundle), "x.wav"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "is a deployment bundle" in err and "bare" not in err


def test_finds_vivado_build_outputs(tmp_path, shipped_design):
    """After `edge-asr build`, Vivado's bitstream and .hwh sit in different folders."""
    design = Path(shutil.copytree(shipped_design, tmp_path / "d"))
    prj = design / "hls" / "edge_asr_net_vivado_accelerator"
    (prj / "project_1.runs" / "impl_1").mkdir(parents=True)
    (prj / "project_1.runs" / "impl_1" / "design_1_wrapper.bit").write_bytes(BITSTREAM)
    handoff = prj / "project_1.gen" / "sources_1" / "bd" / "design_1" / "hw_handoff"
    handoff.mkdir(parents=True)
    (handoff / "design_1.hwh").write_text(_board_hwh(shipped_design))
    write_manifest(design, "design")
    b = write_bundle(design, tmp_path / "b", **QUIET)
    info = verify_bundle(b)
    assert not info["simulation_only"] and info["hwh_source"] == "vendor flow"
    assert (b / "edge_asr_net.bit").read_bytes() == BITSTREAM
    assert (b / "edge_asr_net.hwh").read_text() == (handoff / "design_1.hwh").read_text()  # Vivado's, as it is
    (handoff / "design_1.hwh").unlink()
    write_manifest(design, "design")
    assert main(["bundle", str(design), "--out", str(tmp_path / "b2")]) == 2
    assert not (tmp_path / "b2").exists()


@pytest.mark.parametrize("bit, hwh, message", [
    ("noise.wav", "good", "not a Xilinx bitstream"),
    ("good", "text", "not a hardware description"),
    ("good", "other", "describes no AXI DMA"),
], ids=["audio as bit", "text as hwh", "a hwh without a DMA"])
def test_bundle_refuses_what_is_not_a_bitstream_or_its_hwh(tmp_path, shipped_design, capsys, bit, hwh, message):
    files = {"good.bit": BITSTREAM, "noise.wav.bit": bytes(range(256)) * 64}
    for name, data in files.items():
        (tmp_path / name).write_bytes(data)
    (tmp_path / "good.hwh").write_text(_board_hwh(shipped_design))
    (tmp_path / "text.hwh").write_text("a hardware description, in words\n")
    (tmp_path / "other.hwh").write_text(_board_hwh(shipped_design).replace('MODTYPE="axi_dma"', 'MODTYPE="axi_gpio"'))
    argv = ["bundle", str(shipped_design), "--out", str(tmp_path / "b"), "--bit", str(tmp_path / f"{bit}.bit"),
            "--hwh", str(tmp_path / f"{hwh}.hwh")]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and message in err
    assert not (tmp_path / "b").exists()



def test_no_simulation_only_bundle_without_a_block_design(tmp_path, capsys):
    """hls4ml 1.3 has no board files for the ZCU104: a design for it is the HLS IP alone, and
    a .hwh of a PYNQ-Z2 block design would describe hardware no one built."""
    from .conftest import SHIPPED_MODEL
    design = tmp_path / "d"
    assert main(["convert", str(SHIPPED_MODEL), "--out", str(design), "--board", "zcu104",
                 "--calib", str(SHIPPED_MODEL / "calib.npy")]) == 0
    capsys.readouterr()
    assert main(["bundle", str(design), "--out", str(tmp_path / "b")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "no block design" in err and not (tmp_path / "b").exists()
