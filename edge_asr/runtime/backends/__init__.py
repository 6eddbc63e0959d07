"""Backends run a model or a design on feature batches behind one interface.

Every backend has a `name` and `run(x) -> outputs`: float features (N, *input shape, the
ONNX model's layout) in, float outputs (N, n_out) out. The fixed-point backends (sim,
csim, pynq) are handed features already coded into the design's input type (the
recognizer codes them), so their own conversion changes nothing.

    name  runs                                   on             needs
    onnx  the float model (onnxruntime)          a model dir    the base install
    sim   the bit-exact simulator (numpy)        a design/bundle  the base install
    csim  hls4ml's C simulation (g++)            a design       the [convert] extra, g++
    pynq  the board, through the PYNQ driver     a bundle       pynq (a board image), or the simulated device

`get_backend(name, source)` makes one; the registry names the class by module path and
imports it only when asked, so that the base install (and the board) never imports the
converter's code. The csim backend lives beside the converter (edge_asr.hw.csim): it
builds hls4ml's project.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass

from ...errors import InputError
from ...extras import require_extra


@dataclass(frozen=True)
class BackendSpec:
    """A registered backend: where its class is, what it runs on, what it needs."""

    name: str
    target: str          # "module:Class"
    runs_on: tuple[str, ...]   # "model", "design", "bundle"
    extra: str | None = None   # the extra it needs, if any
    description: str = ""


BACKENDS: dict[str, BackendSpec] = {spec.name: spec for spec in (
    BackendSpec("onnx", "edge_asr.runtime.backends.onnx:OnnxBackend", ("model", "design"),
                description="the float model on onnxruntime"),
    BackendSpec("sim", "edge_asr.runtime.backends.sim:SimBackend", ("design", "bundle"),
                description="the bit-exact simulator"),
    BackendSpec("csim", "edge_asr.hw.csim:CsimBackend", ("design",), extra="convert",
                description="hls4ml's C simulation (g++)"),
    BackendSpec("pynq", "edge_asr.runtime.backends.pynq:PynqBackend", ("bundle",),
                description="the board through the PYNQ driver"),
)}


def get_backend(name: str, source, **options):
    """Make the backend `name` for `source`.

    Args:
        name: one of BACKENDS (onnx, sim, csim, pynq).
        source: what it runs: a model directory (onnx), a design folder (sim, csim, onnx: its
            model.onnx), a bundle (pynq, sim), or an object the backend takes as it is (a
            loaded Design for sim).
        **options: passed to the backend's constructor (e.g. log= for csim, device= for pynq).

    Returns:
        An object with `name` and `run(x) -> outputs`.

    Raises:
        InputError: an unknown backend name.
        MissingExtraError: the backend's extra is not installed.
    """
    spec = BACKENDS.get(name)
    if spec is None:
        raise InputError(f"unknown backend {name!r}; choose one of {', '.join(BACKENDS)}")
    if spec.extra:
        require_extra(spec.extra, f"the {name} backend")
    module, _, cls = spec.target.partition(":")
    return getattr(importlib.import_module(module), cls)(source, **options)
