"""The hardware description (.hwh) of the block design our board project builds.

Vivado writes a .hwh beside every bitstream; PYNQ reads it to learn which IP sits at
which address. Without Vivado there is no .hwh, yet the driver and the simulated device
need one, so a simulation-only bundle carries this one: the same block design that
hls4ml's design.tcl (with our fixes) creates for pynq-z2:

    processing_system7_0 --M_AXI_GP0--> hier_0/axi_dma_0 (S_AXI_LITE, 0x40400000)
    hier_0/axi_dma_0 M_AXIS_MM2S --> hier_0/<name>_axi_0 in_r
    hier_0/<name>_axi_0 out_r    --> hier_0/axi_dma_0 S_AXIS_S2MM
    hier_0/axi_dma_0 M_AXI_MM2S/S2MM --> processing_system7_0 S_AXI_HP0 (DDR)

Only what PYNQ's parser and DMA driver read is written: module names, VLNVs, the
DMA's parameters (simple mode, no scatter-gather, no DRE, 26-bit length register), the
address map, and the stream connections. The XML's structure is a template among our
board sources (hls/pynq-z2/design_1.hwh.in); this module fills it in. Standard library only.
"""

from __future__ import annotations

from xml.sax.saxutils import quoteattr

from ..ir.design import Design
from ..resources import fill_template, hls_source
from .stream import beat_bytes

DMA_VLNV_PREFIX = "xilinx.com:ip:axi_dma:"  # any version, as pynq binds its DMA driver
DMA_VLNV = DMA_VLNV_PREFIX + "7.1"
DMA_BASE = 0x40400000
DMA_RANGE = 0x10000
DDR_HIGH = 0x1FFFFFFF  # PYNQ-Z2: 512 MB of DDR seen through S_AXI_HP0
LENGTH_WIDTH = 26      # c_sg_length_width: transfers of up to 2**26 - 1 bytes
HIER = "hier_0"


def mm_data_width(stream_width: int) -> int:
    """AXI DMA's memory-map data width for a stream of `stream_width`-bit beats.

    PG021 allows 32..1024 for c_m_axi_*_data_width; hls4ml's design.tcl sets it to the
    stream width, which Vivado refuses below 32. A wider memory side costs nothing here:
    the DMA packs beats into memory words."""
    width = 32
    while width < stream_width:
        width *= 2
    return width


def _params(pairs: dict) -> str:
    return "\n".join(f"        <PARAMETER NAME={quoteattr(k)} VALUE={quoteattr(str(v))}/>" for k, v in pairs.items())


def _memrange(instance: str, master: str, slave: str, base: int, high: int, memtype: str, block: str) -> str:
    return (f'        <MEMRANGE ADDRESSBLOCK="{block}" BASENAME="C_BASEADDR" BASEVALUE="0x{base:08X}" '
            f'HIGHNAME="C_HIGHADDR" HIGHVALUE="0x{high:08X}" INSTANCE="{instance}" IS_DATA="TRUE" '
            f'IS_INSTRUCTION="TRUE" MASTERBUSINTERFACE="{master}" MEMTYPE="{memtype}" SLAVEBUSINTERFACE="{slave}"/>')


def dma_parameters(in_width: int, out_width: int) -> dict:
    """The axi_dma parameters PYNQ's DMA driver reads (lowercase, as Vivado writes them)."""
    in_bits, out_bits = 8 * beat_bytes(in_width), 8 * beat_bytes(out_width)
    return {
        "c_include_sg": 0, "c_micro_dma": 0, "c_sg_length_width": LENGTH_WIDTH,
        "c_include_mm2s": 1, "c_include_s2mm": 1,
        "c_include_mm2s_dre": 0, "c_include_s2mm_dre": 0,
        "c_m_axi_mm2s_data_width": mm_data_width(in_bits), "c_m_axis_mm2s_tdata_width": in_bits,
        "c_m_axi_s2mm_data_width": mm_data_width(out_bits), "c_s_axis_s2mm_tdata_width": out_bits,
        "c_mm2s_burst_size": 256, "c_s2mm_burst_size": 256, "c_addr_width": 32,
    }


def part_fields(part: str) -> tuple[str, str, str]:
    """'xc7z020clg400-1' -> ('7z020', 'clg400', '-1')."""
    body, _, speed = part.partition("-")
    body = body[2:] if body.startswith("xc") else body
    for i, ch in enumerate(body):
        if i > 2 and ch.isalpha() and body[i - 1].isdigit():
            return body[:i], body[i:], f"-{speed}" if speed else ""
    return body, "", f"-{speed}" if speed else ""


def write_hwh(design: Design) -> str:
    """The .hwh text for a design (a VivadoAccelerator, axi_stream design), from the block
    design's template in hls/pynq-z2/design_1.hwh.in."""
    core = f"{design.name}_axi_0"
    device, package, speed = part_fields(design.part or "xc7z020clg400-1")
    clock_mhz = 1000.0 / design.clock_period_ns
    ps, dma_inst = "processing_system7_0", f"{HIER}_axi_dma_0"
    dma_params = _params(dma_parameters(design.input_type.width, design.output_type.width)) + "\n" + "\n".join((
        f'        <PARAMETER NAME="C_BASEADDR" VALUE="0x{DMA_BASE:08X}"/>',
        f'        <PARAMETER NAME="C_HIGHADDR" VALUE="0x{DMA_BASE + DMA_RANGE - 1:08X}"/>'))
    return fill_template(hls_source("pynq-z2", "design_1.hwh.in").read_text(), {
        "DEVICE": device, "PACKAGE": package, "SPEEDGRADE": speed, "HIER": HIER, "CORE": core,
        "NAME": design.name, "DMA_VLNV": DMA_VLNV,
        "PS_PARAMETERS": _params({"PCW_USE_S_AXI_HP0": 1, "PCW_FPGA_FCLK0_ENABLE": 1, "PCW_FPGA_FCLK1_ENABLE": 0,
                                  "PCW_FPGA_FCLK2_ENABLE": 0, "PCW_FPGA_FCLK3_ENABLE": 0,
                                  "PCW_FPGA0_PERIPHERAL_FREQMHZ": f"{clock_mhz:g}"}),
        "PS_MEMORYMAP": _memrange(dma_inst, "M_AXI_GP0", "S_AXI_LITE", DMA_BASE, DMA_BASE + DMA_RANGE - 1,
                                  "REGISTER", "Reg"),
        "DMA_PARAMETERS": dma_params,
        "DMA_MEMORYMAP": "\n".join(_memrange(ps, master, "S_AXI_HP0", 0, DDR_HIGH, "MEMORY", "HP0_DDR_LOWOCM")
                                   for master in ("M_AXI_MM2S", "M_AXI_S2MM")),
        "CORE_PARAMETERS": _params({"edge_asr_in_type": design.input_type.cpp(),
                                    "edge_asr_out_type": design.output_type.cpp(),
                                    "edge_asr_n_in": design.n_inputs, "edge_asr_n_out": design.n_outputs}),
    })
