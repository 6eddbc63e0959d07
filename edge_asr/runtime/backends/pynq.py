"""A PYNQ board behind the backend interface: float features in, the board's outputs out.

On a board the active pynq device is the FPGA. With EDGE_ASR_PYNQ_DEVICE=simulated the
same driver runs against `deploy.simdevice.SimulatedDevice` (the simulator behind pynq's
own Overlay, allocate and DMA driver), which is how CI exercises this path.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import numpy as np

from ...errors import EdgeAsrError, ToolMissingError


class DeviceError(EdgeAsrError):
    """No board to run on."""


class PynqBackend:
    """A PYNQ board behind the backend interface, through EdgeAsrOverlay.

    Args:
        bundle_dir: a bundle made by `edge-asr bundle`.
        device: a pynq Device (default: the active one; EDGE_ASR_PYNQ_DEVICE=simulated makes
            a simulated device active).

    Raises:
        ToolMissingError: no pynq package; DeviceError: no PYNQ device; BundleError: the
        bundle does not check out for this board.
    """
    name = "pynq"

    def __init__(self, bundle_dir: str | Path, device=None):
        try:
            import pynq  # noqa: F401
        except ImportError as exc:
            raise ToolMissingError(
                "the pynq backend needs the pynq package: run it on a PYNQ board image, or off the board in a "
                "virtual environment with pynq==4.0.0 and EDGE_ASR_PYNQ_DEVICE=simulated (make board-setup)") from exc
        if device is None and os.environ.get("EDGE_ASR_PYNQ_DEVICE") == "simulated":
            from ...deploy.simdevice import SimulatedDevice
            device = SimulatedDevice.activate()
        elif device is None:
            from pynq.pl_server.device import Device
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # pynq warns about XRT while probing
                try:
                    device = Device.active_device
                except RuntimeError as exc:
                    raise DeviceError(f"no PYNQ device found ({exc}); run on a PYNQ board image, or set "
                                      "EDGE_ASR_PYNQ_DEVICE=simulated for the simulated device") from exc
        from ...deploy.driver import EdgeAsrOverlay
        self.overlay = EdgeAsrOverlay(bundle_dir, device=device)

    def run(self, x: np.ndarray) -> np.ndarray:
        """Float features (N, *input shape) -> the board's exact output values (N, n_out)."""
        x = np.asarray(x)
        if len(x) == 1:
            return self.overlay.predict_one(x[0]).values[None]
        return self.overlay.predict(x).values
