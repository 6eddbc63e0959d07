"""A simulated PYNQ device: pynq's own Overlay, allocate and DMA driver, with the fabric
replaced by the bit-exact simulator. This is what CI runs the board driver against.

    from edge_asr.deploy.simdevice import SimulatedDevice
    dev = SimulatedDevice.activate()                  # pynq.Device.active_device = dev
    ol = EdgeAsrOverlay("bundle/")                    # the driver, unchanged

How it plugs in (pynq 4.0.0, x86, no board):
- `SimulatedDevice` is a `pynq.Device` with capability REGISTER_RW, so every MMIO read
  and write of pynq's drivers arrives here as 4-byte little-endian words.
- `allocate` hands out numpy memory with fake physical addresses from a bump allocator,
  coherent, so flush/invalidate have nothing to do.
- The .hwh is read by pynq's own Zynq parser (`_HWHZynq`) with PL clock set-up turned off
  (there are no clocks to program); `download()` builds a register model of every AXI DMA
  in it and calls pynq's `post_download`.
- The AXI DMA (simple mode, PG021 register map) feeds the MM2S stream to the design's
  core, the simulator, and returns its output stream through S2MM. The core is the
  design.json beside the bitstream/hwh: in a bundle, the design it was built from.

The stream contract of hls4ml's VivadoAccelerator IP is checked on every transfer, and a
breach raises `StreamContractError` at the register write where the hardware would hang
or corrupt data: whole beats, whole inputs per transfer (the DMA raises TLAST at the end
of a transfer and the IP marks the last output of that input), buffers inside allocated
memory, addresses aligned to the memory-map width (no data realignment engine), a
receive buffer large enough for the packet, and no wait on a send that can only finish
once a receive is armed.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from pynq.buffer import PynqBuffer
from pynq.pl_server.device import Device
from pynq.pl_server.hwh_parser import _HWHZynq, get_hwh_name

from ..errors import EdgeAsrError
from ..ir.design import DESIGN_FILE, Design
from ..sim.engine import simulate_codes
from .bundle import BundleError
from .hwh import DMA_VLNV_PREFIX
from .stream import beat_bytes, pack, unpack

MEM_BASE = 0x10000000   # where the bump allocator starts (inside the PS DDR window)
PAGE = 4096             # CMA buffers are page-aligned on the board
STALL_POLLS = 100_000   # status reads of a send that cannot finish before we call it a deadlock


class StreamContractError(EdgeAsrError, RuntimeError):
    """A DMA transfer the real IP would hang on or answer with wrong data."""


class SimulatedHWH(_HWHZynq):
    """pynq's Zynq .hwh parser without the PL clock table (nothing to program here;
    pynq 4's Overlay also expects a 'frequency' key this parser does not write)."""

    systemgraph = None  # pynq 4's own parser adds a system graph; Device.set_bitfile_name reads it

    def init_clk_dict(self, mod):
        """No PL clocks to program off the board: an empty clock table."""
        self.clock_dict = {}


class SimulatedMemory:
    """Host memory with fake, page-aligned physical addresses."""

    def __init__(self, device: "SimulatedDevice"):
        self.device = device
        self._next = MEM_BASE
        self.blocks: dict[int, np.ndarray] = {}   # physical address -> backing bytes

    def allocate(self, shape, dtype, **kwargs) -> PynqBuffer:
        """A PynqBuffer over host memory at the next page-aligned fake physical address."""
        dtype = np.dtype(dtype)
        nbytes = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
        backing = np.zeros(max(nbytes, 1), dtype=np.uint8)
        addr = self._next
        self._next += -(-max(nbytes, 1) // PAGE) * PAGE
        self.blocks[addr] = backing
        return PynqBuffer(shape, dtype, buffer=backing, device=self.device, device_address=addr,
                          coherent=True, bo=addr)

    def view(self, addr: int, nbytes: int, what: str) -> np.ndarray:
        """The bytes [addr, addr + nbytes) of one allocation, or a contract error."""
        for base, block in self.blocks.items():
            if base <= addr and addr + nbytes <= base + block.size:
                return block[addr - base:addr - base + nbytes]
        raise StreamContractError(f"{what}: 0x{addr:08x}+{nbytes} bytes is not inside one allocated buffer "
                                  "(the DMA would raise a decode/slave error)")


class SimulatedCore:
    """The HLS IP between the DMA streams: whole inputs in, one output packet per send."""

    def __init__(self, design_dir: Path):
        self.design = Design.load(design_dir)
        self.in_type, self.out_type = self.design.input_type, self.design.output_type
        self.n_in, self.n_out = self.design.n_inputs, self.design.n_outputs
        self.in_beat, self.out_beat = beat_bytes(self.in_type.width), beat_bytes(self.out_type.width)
        self.inputs_run = 0

    def run(self, data: np.ndarray) -> bytes:
        """One MM2S transfer's bytes -> the output packet (TLAST on its last beat)."""
        if data.size % self.in_beat:
            raise StreamContractError(f"MM2S transfer of {data.size} bytes is not a whole number of "
                                      f"{self.in_beat}-byte beats")
        beats = data.size // self.in_beat
        if beats % self.n_in:
            raise StreamContractError(
                f"MM2S transfer of {beats} beats is not a whole number of {self.n_in}-beat inputs: the DMA raises "
                "TLAST on the transfer's last beat, which must be an input's last beat")
        codes = unpack(data, self.in_type.width, self.in_type.signed).reshape(beats // self.n_in, -1)
        out = simulate_codes(self.design, codes).codes
        self.inputs_run += len(codes)
        return pack(out.reshape(-1), self.out_type.width, self.out_type.signed)


@dataclass
class Transfer:
    """One completed DMA transfer, for tests and debugging."""
    channel: str        # "mm2s" or "s2mm"
    address: int
    nbytes: int         # bytes moved
    beats: int
    tlast_beat: int     # index of the beat that carried TLAST


@dataclass
class _Channel:
    offset: int
    regs: dict = field(default_factory=dict)
    running: bool = False
    idle: bool = False     # PG021 simple mode: Idle is set once a transfer completes
    ioc: bool = False
    busy: bool = False
    stall_polls: int = 0

    def status(self) -> int:
        return (0 if self.running else 0x1) | (0x2 if self.idle else 0) | (0x1000 if self.ioc else 0)


class SimulatedDma:
    """AXI DMA v7.1 in simple (register direct) mode, PG021's register map."""

    def __init__(self, device: "SimulatedDevice", name: str, params: dict, core: SimulatedCore):
        self.device, self.name, self.core, self.params = device, name, core, params
        if int(params.get("c_include_sg", 0)):
            raise StreamContractError(f"{name}: scatter-gather DMA is not what the board project builds")
        self.mm_bytes = {"mm2s": int(params.get("c_m_axi_mm2s_data_width", 32)) // 8,
                         "s2mm": int(params.get("c_m_axi_s2mm_data_width", 32)) // 8}
        self.dre = {"mm2s": bool(int(params.get("c_include_mm2s_dre", 0))),
                    "s2mm": bool(int(params.get("c_include_s2mm_dre", 0)))}
        self.max_len = (1 << int(params.get("c_sg_length_width", 26))) - 1
        self.mm2s, self.s2mm = _Channel(0x00), _Channel(0x30)
        self.packets: list[bytes] = []      # output packets the core holds, oldest first
        self.s2mm_target: tuple[int, int] | None = None

    # --- register access -------------------------------------------------------------
    def read(self, offset: int) -> int:
        """A 32-bit register read at `offset` (status reads count the polls of a stalled send)."""
        ch = self.mm2s if offset < 0x30 else self.s2mm
        reg = offset - ch.offset
        if reg == 0x04:
            if ch is self.mm2s and ch.busy:
                ch.stall_polls += 1
                if ch.stall_polls > STALL_POLLS:
                    raise StreamContractError(
                        f"{self.name}: waiting on a send of several inputs before a receive is armed; the IP "
                        "stalls on its full output stream, so the send never completes (arm S2MM first)")
            return ch.status()
        return ch.regs.get(reg, 0)

    def write(self, offset: int, value: int) -> None:
        """A 32-bit register write at `offset`: control, status (write 1 to clear), addresses, lengths (which start transfers)."""
        ch = self.mm2s if offset < 0x30 else self.s2mm
        reg = offset - ch.offset
        if reg == 0x00:
            if value & 0x4:  # soft reset: both channels halt, pending data is dropped
                self.__init__(self.device, self.name, self.params, self.core)
                return
            ch.regs[0x00] = value
            ch.running = bool(value & 0x1)
        elif reg == 0x04:
            if value & 0x1000:
                ch.ioc = False  # write 1 to clear
        elif reg == 0x28:
            ch.regs[0x28] = value
            self._start(ch, value)
        else:
            ch.regs[reg] = value

    # --- transfers -------------------------------------------------------------------
    def _address(self, ch: _Channel, which: str, nbytes: int) -> int:
        if not ch.running:
            raise StreamContractError(f"{self.name}: {which.upper()} length written while the channel is halted")
        if ch.busy:
            raise StreamContractError(f"{self.name}: {which.upper()} transfer started while one is in flight")
        if not 0 < nbytes <= self.max_len:
            raise StreamContractError(f"{self.name}: {which.upper()} length {nbytes} outside 1..{self.max_len}")
        addr = ch.regs.get(0x18, 0) | (ch.regs.get(0x1C, 0) << 32)
        if not self.dre[which] and addr % self.mm_bytes[which]:
            raise StreamContractError(f"{self.name}: {which.upper()} address 0x{addr:08x} is not aligned to the "
                                      f"{self.mm_bytes[which]}-byte memory-map width (no realignment engine)")
        return addr

    def _start(self, ch: _Channel, nbytes: int) -> None:
        if ch is self.mm2s:
            addr = self._address(ch, "mm2s", nbytes)
            data = self.device.memory.view(addr, nbytes, f"{self.name} MM2S")
            packet = self.core.run(data.copy())
            beats = nbytes // self.core.in_beat
            self.device.transfers.append(Transfer("mm2s", addr, nbytes, beats, beats - 1))
            self.packets.append(packet)
            ch.idle, ch.ioc = False, False
            # one input's output fits in the IP's own stream buffers; more needs a receiver
            held = sum(len(p) for p in self.packets)
            ch.busy = self.s2mm_target is None and held > self.core.n_out * self.core.out_beat
            ch.stall_polls = 0
            if not ch.busy:
                ch.idle, ch.ioc = True, True
            self._deliver()
        else:
            # S2MM's address registers sit at 0x48/0x4C, i.e. 0x18/0x1C of its block
            addr = self._address(ch, "s2mm", nbytes)
            self.device.memory.view(addr, nbytes, f"{self.name} S2MM")
            self.s2mm_target = (addr, nbytes)
            ch.idle, ch.ioc, ch.busy = False, False, True
            self._deliver()

    def _deliver(self) -> None:
        if self.s2mm_target is None or not self.packets:
            return
        addr, room = self.s2mm_target
        packet = self.packets.pop(0)
        if len(packet) > room:
            raise StreamContractError(
                f"{self.name}: S2MM buffer of {room} bytes is smaller than the {len(packet)}-byte output packet; the "
                "DMA would stop before TLAST and the next receive would start inside this packet")
        self.device.memory.view(addr, len(packet), f"{self.name} S2MM")[:] = np.frombuffer(packet, np.uint8)
        beats = len(packet) // self.core.out_beat
        self.device.transfers.append(Transfer("s2mm", addr, len(packet), beats, beats - 1))
        self.s2mm.regs[0x28] = len(packet)   # S2MM_LENGTH reads back the bytes received
        self.s2mm.idle, self.s2mm.ioc, self.s2mm.busy = True, True, False
        self.s2mm_target = None
        if self.mm2s.busy:
            self.mm2s.busy, self.mm2s.idle, self.mm2s.ioc = False, True, True


class SimulatedDevice(Device):
    """A `pynq.Device` whose programmable logic is the bit-exact simulator."""

    simulated = True

    def __init__(self, board: str = "pynq-z2", part: str | None = None, tag: str = "edge_asr_simulated"):
        super().__init__(tag)
        self.board, self.part = board, part   # what the driver checks a bundle against
        self.name = f"simulated {board}"
        self.capabilities = {"REGISTER_RW": True}
        self.memory = SimulatedMemory(self)
        self.regions: dict[int, tuple[int, SimulatedDma]] = {}
        self.transfers: list[Transfer] = []
        self.timestamp = ""
        self.bitfile_name = None

    @classmethod
    def activate(cls, **kwargs) -> "SimulatedDevice":
        """Make a new simulated device pynq's active device (what `Overlay()` and
        `allocate()` use when no device is given)."""
        dev = cls(**kwargs)
        Device.active_device = dev
        return dev

    @property
    def default_memory(self) -> SimulatedMemory:
        """The simulated memory `allocate` uses."""
        return self.memory

    def get_bitfile_metadata(self, bitfile_name: str, partial: bool = False):
        """pynq's Zynq parser (without clocks) on the .hwh beside the bitstream; BundleError when there is none."""
        hwh = get_hwh_name(bitfile_name)
        if not Path(hwh).is_file():
            raise BundleError(f"{hwh}: no hardware description beside {bitfile_name}")
        return SimulatedHWH(hwh)

    def download(self, bitstream, parser=None) -> None:
        """'Program' the fabric: register models for every AXI DMA, fed by the design's core."""
        parser = parser or self.get_bitfile_metadata(bitstream.bitfile_name)
        design_dir = Path(bitstream.bitfile_name).parent
        if not (design_dir / DESIGN_FILE).is_file():
            raise BundleError(f"{design_dir}: no {DESIGN_FILE} beside the bitstream; the simulated device runs it")
        core = SimulatedCore(design_dir)
        self.regions = {}
        for name, ip in parser.ip_dict.items():
            if str(ip.get("type", "")).startswith(DMA_VLNV_PREFIX):
                self.regions[ip["phys_addr"]] = (ip["addr_range"], SimulatedDma(self, name, ip["parameters"], core))
        self.core = core
        self.transfers = []
        self.post_download(bitstream, parser, self.name)

    def _region(self, address: int) -> tuple[SimulatedDma, int]:
        for base, (size, model) in self.regions.items():
            if base <= address < base + size:
                return model, address - base
        raise StreamContractError(f"register access at 0x{address:08x}: no IP is mapped there")

    def read_registers(self, address: int, length: int) -> bytes:
        """pynq's MMIO read: one 4-byte little-endian word from the IP mapped there."""
        model, off = self._region(address)
        if length != 4 or off % 4:
            raise StreamContractError(f"{model.name}: {length}-byte register read at +0x{off:x}; AXI-lite is 32-bit")
        return int(model.read(off)).to_bytes(4, "little")

    def write_registers(self, address: int, data: bytes) -> None:
        """pynq's MMIO write: 4-byte little-endian words to the IP mapped there."""
        model, off = self._region(address)
        if len(data) % 4 or off % 4:
            raise StreamContractError(f"{model.name}: {len(data)}-byte register write at +0x{off:x}")
        for i in range(0, len(data), 4):
            model.write(off + i, int.from_bytes(data[i:i + 4], "little"))

    def flush(self, bo, offset, ptr, size):  # coherent memory: nothing to do
        """Coherent memory: nothing to flush."""
        pass

    def invalidate(self, bo, offset, ptr, size):
        """Coherent memory: nothing to invalidate."""
        pass

    def describe(self) -> dict:
        """Board, inputs run and transfers so far."""
        return {"board": self.board, "inputs_run": getattr(getattr(self, "core", None), "inputs_run", 0),
                "transfers": len(self.transfers)}

    def __repr__(self) -> str:
        return f"SimulatedDevice({json.dumps(self.describe())})"
