"""Our repairs of hls4ml 1.3.0, in one place: what each is, and installing them.

Three kinds, each in its own module, each naming the hls4ml version it was written for and
the upstream issue (`Repair`):
- parser (hls4ml_parsers): an ONNX handler registered in place of hls4ml's own;
- pass (hls4ml_passes): an hls4ml optimizer pass in a flow of ours, which a conversion runs
  after the backend's default flow (`flows`);
- writer (hls4ml_writer): edits of the files hls4ml writes (`write_project`).
Importing this module checks the installed hls4ml against the version the repairs were
written for (Hls4mlVersionError otherwise); tests/test_convert.py tests each repair.
"""

from __future__ import annotations

import threading

import hls4ml

from . import hls4ml_parsers, hls4ml_passes, hls4ml_writer
from .hls4ml_passes import flows
from .hls4ml_repair import Repair, check_version
from .hls4ml_writer import stream_depths, write_project

__all__ = ["REPAIRS", "apply", "flows", "stream_depths", "write_project"]

REPAIRS: list[Repair] = [hls4ml_parsers.POOL_1D, hls4ml_passes.SOFTMAX_TYPES, *hls4ml_writer.REPAIRS]
check_version(REPAIRS, hls4ml.__version__)

_lock = threading.Lock()


def apply() -> None:
    """Register the parser and the passes with hls4ml (once per process; safe on threads)."""
    with _lock:
        hls4ml_parsers.register()
        hls4ml_passes.register()
