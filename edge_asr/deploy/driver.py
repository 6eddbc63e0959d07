"""The PYNQ driver: a verified bundle in, fixed-point inference through the AXI DMA out.

Runs on the board with numpy, pynq and this package's board-side modules only (a bundle
carries them in driver/). On a PYNQ image:

    from edge_asr.deploy.driver import EdgeAsrOverlay
    ol = EdgeAsrOverlay("/home/xilinx/kws-bundle")     # verifies the bundle, then loads
    r = ol.predict(features)          # (N, 13, 98) float32 -> r.values, r.codes, r.seconds
    r = ol.predict_one(features[0])   # the single-frame (latency) path

Off the board the same code runs against `deploy.simdevice.SimulatedDevice`.

What travels (hls4ml's VivadoAccelerator axi_stream top level): one scalar per beat, the
stream type's width rounded up to whole bytes, two's complement, little-endian
(`deploy.stream`); one DMA transfer per batch, so the DMA's TLAST falls on the last beat
of the last input and the IP marks the last output of that input. Features are coded into
the design's input type here (its rounding and saturation), never by the DMA.

Two faults of hls4ml's generated `axi_stream_driver.py` are avoided: it replaces its DMA
output buffer with the decoded array (the next call DMAs to a bogus address), and it
drops its `device=` argument.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from pynq import Overlay, allocate
from pynq.pl_server.device import Device

from ..errors import EdgeAsrError
from ..ir.design import Design
from ..sim.fixed import quantize, to_float
from .bundle import BundleError, verify_bundle
from .hwh import DMA_VLNV_PREFIX
from .stream import beat_bytes, pack, unpack


class DriverError(EdgeAsrError):
    """The board answered in a way the design cannot explain (wrong bitstream, DMA fault)."""


@dataclass
class Prediction:
    """What predict/predict_one return: exact output values, their codes, and the host time of the call."""
    values: np.ndarray   # (N, n_out) exact values of the design's output type
    codes: np.ndarray    # (N, n_out) int64 codes of the output type
    seconds: float       # host time of the call: coding, packing, DMA, unpacking


def board_of(device) -> str | None:
    """The board this code runs on: the simulated device says; a PYNQ image sets $BOARD
    (Pynq-Z2, ZCU104), which matches our board names once lowercased."""
    board = getattr(device, "board", None) or os.environ.get("BOARD")
    return board.lower() if board else None


class EdgeAsrOverlay(Overlay):
    """An edge-asr bundle loaded onto a PYNQ device (or the simulated one).

    The bundle is verified (manifest, board, part, bitstream present) and the .hwh's DMA
    stream widths checked against the design before anything is loaded.

    Args:
        bundle_dir: a bundle made by `edge-asr bundle`.
        device: a pynq Device (default: pynq's active device).
        download: program the fabric (default).
        batch_size: inputs per DMA transfer on the batched path (at most what one transfer holds).
        ignore_version: passed to pynq's Overlay.

    Raises:
        BundleError: the bundle does not check out, is for another board or part, or is
            simulation-only on a real board.
        DriverError: the .hwh has no single AXI DMA, its stream widths are not the design's,
            or one input exceeds a DMA transfer.
    """

    def __init__(self, bundle_dir: str | Path, device=None, download: bool = True, batch_size: int = 64,
                 ignore_version: bool = False):
        bundle_dir = Path(bundle_dir)
        device = device or Device.active_device
        # nothing is loaded before the bundle checks out: manifest, board, bitstream present
        info = verify_bundle(bundle_dir, board=board_of(device), part=getattr(device, "part", None))
        if info["simulation_only"] and not getattr(device, "simulated", False):
            raise BundleError(f"{bundle_dir}: simulation-only bundle (no bitstream); run `edge-asr build` where "
                              "Vivado is installed, then `edge-asr bundle` again")
        self.bundle_dir, self.bundle_info = bundle_dir, info
        self.design = Design.load(bundle_dir, verify=False)  # verify_bundle has just checked the manifest
        features = json.loads((bundle_dir / "feature.json").read_text())
        self.labels = features.get("labels")
        # a simulation-only bundle has no .bit: pynq takes the .hwh's own name, and the
        # simulated device reads the .hwh beside it either way
        bitfile = bundle_dir / (info["bitstream"] or f"{info['name']}.hwh")
        super().__init__(str(bitfile), download=False, ignore_version=ignore_version, device=device)
        self.in_type, self.out_type = self.design.input_type, self.design.output_type
        self._dma_name = self._find_dma_name()
        self._check_stream_widths()  # before the fabric is programmed
        if download:
            self.download()

        self.input_shape = self.design.onnx_input_shape
        self.n_in, self.n_out = self.design.n_inputs, self.design.n_outputs
        self.in_bytes = self.n_in * beat_bytes(self.in_type.width)     # one input on the stream
        self.out_bytes = self.n_out * beat_bytes(self.out_type.width)
        self.dma = self
        for part in self._dma_name.split("/"):  # e.g. hier_0/axi_dma_0: pynq's attribute path
            self.dma = getattr(self.dma, part)
        most = self.dma.buffer_max_size // max(self.in_bytes, self.out_bytes)
        if most < 1:
            raise DriverError(f"{bundle_dir}: one input is {self.in_bytes} bytes, more than the DMA's "
                              f"{self.dma.buffer_max_size}-byte transfer limit")
        self.batch_size = max(1, min(int(batch_size), most))
        self._batch_in = allocate(shape=(self.batch_size * self.in_bytes,), dtype=np.uint8, target=self.device)
        self._batch_out = allocate(shape=(self.batch_size * self.out_bytes,), dtype=np.uint8, target=self.device)
        self._one_in = allocate(shape=(self.in_bytes,), dtype=np.uint8, target=self.device)
        self._one_out = allocate(shape=(self.out_bytes,), dtype=np.uint8, target=self.device)
        self.timings: list[float] = []   # host seconds per predict/predict_one call

    def _check_stream_widths(self) -> None:
        """The DMA's stream widths in the .hwh must be the design's beat widths: a bundle
        whose bitstream was built from another design would otherwise run, and answer
        garbage."""
        params = self.ip_dict[self._dma_name].get("parameters", {})
        for key, t, side in (("c_m_axis_mm2s_tdata_width", self.in_type, "input"),
                             ("c_s_axis_s2mm_tdata_width", self.out_type, "output")):
            if key in params and int(params[key]) != 8 * beat_bytes(t.width):
                raise DriverError(
                    f"{self.bitfile_name}: the DMA streams {params[key]}-bit words, the design's {side} "
                    f"stream is {8 * beat_bytes(t.width)}-bit ({t.cpp()}): the bitstream was not built from "
                    f"{self.bundle_dir / 'design.json'}; build and bundle again")

    def _find_dma_name(self) -> str:
        names = [k for k, v in self.ip_dict.items() if str(v.get("type", "")).startswith(DMA_VLNV_PREFIX)]
        if len(names) != 1:
            raise DriverError(f"{self.bitfile_name}: expected one AXI DMA in the hardware description, found "
                              f"{len(names)}; was this bitstream built by `edge-asr build`?")
        return names[0]

    # --- coding ----------------------------------------------------------------------
    def code(self, x) -> np.ndarray:
        """Float features (N, *input_shape) -> int64 codes of the input type."""
        x = np.asarray(x, dtype=np.float64)
        if x.shape[1:] != self.input_shape:
            raise DriverError(f"inputs of shape {x.shape[1:]}, the design takes {self.input_shape}")
        if not np.isfinite(x).all():
            raise DriverError("inputs contain NaN or Inf")
        return quantize(x, self.in_type).reshape(len(x), -1)

    def decode(self, codes: np.ndarray) -> np.ndarray:
        """Output codes -> the exact values of the output type."""
        return to_float(codes, self.out_type)

    # --- the DMA round trip ----------------------------------------------------------
    def _round_trip(self, codes: np.ndarray, buf_in, buf_out) -> np.ndarray:
        n = len(codes)
        send, recv = n * self.in_bytes, n * self.out_bytes
        buf_in[:send] = np.frombuffer(pack(codes.reshape(-1), self.in_type.width, self.in_type.signed), np.uint8)
        # receive armed before waiting on the send: the IP's output stream must drain
        self.dma.sendchannel.transfer(buf_in, nbytes=send)
        self.dma.recvchannel.transfer(buf_out, nbytes=recv)
        self.dma.sendchannel.wait()
        self.dma.recvchannel.wait()
        got = self.dma.recvchannel.transferred
        if got != recv:
            raise DriverError(f"the IP returned {got} bytes for {n} inputs, expected {recv}: the bitstream and "
                              f"{self.bundle_dir} do not match")
        return unpack(np.array(buf_out[:recv]), self.out_type.width, self.out_type.signed).reshape(n, self.n_out)

    def run_codes(self, codes: np.ndarray) -> np.ndarray:
        """Input codes (N, n_in) -> output codes (N, n_out), in DMA batches of batch_size."""
        codes = np.asarray(codes, dtype=np.int64).reshape(len(codes), -1)
        if codes.shape[1] != self.n_in:
            raise DriverError(f"{codes.shape[1]} input codes per input, the design takes {self.n_in}")
        if len(codes) == 1:
            return self._round_trip(codes, self._one_in, self._one_out)
        parts = [self._round_trip(codes[i:i + self.batch_size], self._batch_in, self._batch_out)
                 for i in range(0, len(codes), self.batch_size)]
        return np.concatenate(parts) if parts else np.zeros((0, self.n_out), np.int64)

    def predict(self, x) -> Prediction:
        """The batched path: float features (N, *input_shape) -> outputs."""
        t0 = time.perf_counter()
        out = self.run_codes(self.code(x))
        seconds = time.perf_counter() - t0
        self.timings.append(seconds)
        return Prediction(self.decode(out), out, seconds)

    def predict_one(self, x) -> Prediction:
        """The single-frame (latency) path: one input (*input_shape) -> one output."""
        t0 = time.perf_counter()
        out = self._round_trip(self.code(np.asarray(x)[None]), self._one_in, self._one_out)
        seconds = time.perf_counter() - t0
        self.timings.append(seconds)
        return Prediction(self.decode(out)[0], out[0], seconds)

    def timing_summary(self) -> dict:
        """Host time per predict/predict_one call so far: calls, ms_p50, ms_p99."""
        t = np.array(self.timings) if self.timings else np.zeros(1)
        return {"calls": len(self.timings), "ms_p50": round(float(np.percentile(t, 50)) * 1e3, 3),
                "ms_p99": round(float(np.percentile(t, 99)) * 1e3, 3)}

    def close(self) -> None:
        """Free the DMA buffers."""
        for buf in (self._batch_in, self._batch_out, self._one_in, self._one_out):
            buf.freebuffer()
