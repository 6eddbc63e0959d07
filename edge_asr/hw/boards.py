"""The boards edge-asr converts for, and their budgets: one table, used everywhere.

Figures from the vendors' data sheets (xc7z020: DS190, Zynq-7000 overview; xczu7ev:
DS891, Zynq UltraScale+ MPSoC overview). One BRAM36 is two BRAM18. `hls_backend` is
hls4ml's backend for the board: hls4ml 1.3 has board files (block design, DMA, driver)
for the PYNQ-Z2 and none for the ZCU104, so there the design is the HLS IP alone.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..errors import InputError


@dataclass(frozen=True)
class Board:
    """A board: its part, hls4ml backend, DSP kind and what the part holds.

    Attributes:
        name: edge-asr's name (`--board`).
        part: the FPGA part.
        hls_backend: hls4ml's backend for it.
        family: "7series" (DSP48E1, 25x18 multipliers) or "ultrascale+" (DSP48E2, 27x18).
        lut, ff, dsp, bram36, uram: what the part has.
    """

    name: str
    part: str
    hls_backend: str
    family: str
    lut: int
    ff: int
    dsp: int
    bram36: int
    uram: int = 0

    @property
    def bram18(self) -> int:
        """BRAM18 blocks: two per BRAM36."""
        return 2 * self.bram36

    def available(self) -> dict[str, int]:
        """The resources the cost model counts, as `edge-asr cost --json` names them."""
        return {"dsp": self.dsp, "bram18": self.bram18, "lut": self.lut, "ff": self.ff}


BOARDS: dict[str, Board] = {b.name: b for b in (
    Board("pynq-z2", "xc7z020clg400-1", "VivadoAccelerator", "7series",
          lut=53_200, ff=106_400, dsp=220, bram36=140),
    Board("zcu104", "xczu7ev-ffvc1156-2-e", "Vitis", "ultrascale+",
          lut=230_400, ff=460_800, dsp=1_728, bram36=312, uram=96),
)}

# `--board none`: HLS IP alone for the PYNQ-Z2's part, with no budget (the fit is skipped)
NO_BOARD = "none"
NO_BOARD_PART = "xc7z020clg400-1"


def board(name: str) -> Board:
    """The board called `name`; InputError naming the known ones otherwise."""
    if name not in BOARDS:
        raise InputError(f"unknown board {name!r}; choose one of {', '.join(list(BOARDS) + [NO_BOARD])}")
    return BOARDS[name]


def family_of_part(part: str | None) -> str:
    """"ultrascale+" for Zynq UltraScale+ (xczu...) and other UltraScale+ parts, else "7series"."""
    p = (part or "").lower()
    return "ultrascale+" if p.startswith(("xczu", "xcvu", "xcku", "xcu")) else "7series"
