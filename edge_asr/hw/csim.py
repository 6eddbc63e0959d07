"""hls4ml's C simulation: the design's hls4ml model compiled with g++ and run through ctypes.

The compiled library is cached per design, keyed by the sha256 of its manifest, under
$EDGE_ASR_CACHE (default ~/.cache/edge-asr)/csim/<key>/. A second use of the same design,
in this process or a later one, skips the 6-13 s compile.
"""

from __future__ import annotations

import contextlib
import ctypes
import io
import shutil
import time
from pathlib import Path

import numpy as np

from ..errors import EdgeAsrError, InputError, raised_by_edge_asr
from ..ir.design import Design
from ..ir.manifest import manifest_digest
from ..resources import cache_root
from ..sim.fixed import quantize, to_float

FML = "hls4ml_model.fml"


class CsimError(EdgeAsrError):
    """The C simulation could not be built or run."""


class CsimBackend:
    """hls4ml's C simulation of a design made by `edge-asr convert`, compiled once and cached.

    Args:
        design_dir: the design folder (its manifest is checked; it must hold the
            hls4ml_model.fml that convert writes).
        log: called with a line before a compile starts.

    Raises:
        CsimError: no g++, no serialized hls4ml model, or the build failed.
    """

    name = "csim"
    _loaded: dict[str, object] = {}

    def __init__(self, design_dir: str | Path, log=None):
        self.design_dir = Path(design_dir)
        self.design = Design.load(self.design_dir)
        if not (self.design_dir / FML).is_file():
            raise CsimError(f"{self.design_dir}: no {FML}; C simulation needs a design folder written by "
                            "`edge-asr convert` (this one holds design.json alone)")
        key = manifest_digest(self.design_dir)[:20]
        self.compile_seconds = 0.0
        if key in CsimBackend._loaded:
            self.hls_model = CsimBackend._loaded[key]
            return
        if shutil.which("g++") is None:
            raise CsimError("g++ not found on PATH; C simulation needs it (apt-get install g++)")
        workdir = cache_root() / "csim" / key
        from hls4ml.utils.serialization import deserialize_model
        quiet = io.StringIO()
        with contextlib.redirect_stdout(quiet):
            hm = deserialize_model(self.design_dir / FML, output_dir=workdir / "tb")
            hm.config.config["OutputDir"] = str(workdir / "hls")
            libs = sorted((workdir / "hls" / "firmware").glob("*.so")) if (workdir / "ok").exists() else []
            t0 = time.time()
            try:
                if libs:
                    hm._top_function_lib = ctypes.cdll.LoadLibrary(str(libs[-1]))
                else:
                    if log:
                        log(f"compiling the C simulation of {self.design_dir} (g++, once per design)")
                    shutil.rmtree(workdir, ignore_errors=True)
                    from . import hls4ml_fixes
                    hls4ml_fixes.write_project(hm)  # what hm.compile() does, plus our repairs
                    hm._compile()
                    (workdir / "ok").write_text("compiled\n")
            except Exception as exc:  # hls4ml, g++ (through hls4ml) or the loader; our own repairs' bugs stay bugs
                if raised_by_edge_asr(exc):
                    raise
                raise CsimError(f"{self.design_dir}: C simulation build failed ({str(exc).splitlines()[0]}); "
                                f"see {workdir / 'hls'}") from exc
            self.compile_seconds = time.time() - t0
        self.hls_model = hm
        CsimBackend._loaded[key] = hm

    def run(self, x: np.ndarray) -> np.ndarray:
        """Float inputs in the ONNX input layout (N, ...) -> float outputs (N, n_out).

        The inputs are coded into the design's input type first, as the host does before the
        DMA (deploy.stream): a board project's stream type is that type widened to whole bytes
        with more fractional bits, and hls4ml's bridge would round each float to it and then
        again to the input type; that double rounding is not what the board computes. Returns
        the output type's exact values as float64-representable floats.
        """
        x = np.asarray(x, dtype=np.float64)
        want = self.design.onnx_input_shape
        if tuple(x.shape[1:]) != want:
            raise InputError(f"inputs of shape {x.shape[1:]}, the design takes {want}")
        t = self.design.input_type
        x = to_float(quantize(x, t), t)
        flat = np.ascontiguousarray(x.reshape(len(x), -1))
        with contextlib.redirect_stdout(io.StringIO()):
            y = self.hls_model.predict(flat)
        y = np.asarray(y, dtype=np.float64)
        return y.reshape(len(x), -1)


def write_golden_vectors(design_dir: str | Path, inputs: str, out: str | Path, wild: int = 0, force: bool = False,
                         log=None) -> int:
    """Golden vectors of a design: its C simulation on `inputs`, written with the inputs as
    a vector folder (`edge_asr.sim.vectors`).

    Args:
        design_dir: a design folder made by `edge-asr convert`.
        inputs: an .npy of inputs (ONNX layout), an audio file or a data directory.
        out: the vector folder (refused if it exists, unless force).
        wild: also this many random inputs at 1.5 times the inputs' largest magnitude
            (out of range: saturation is exercised).
        log: where the compile's progress goes.

    Returns:
        How many vectors were written.

    Raises:
        CsimError: the C simulation does not build; OutputExistsError: out exists.
    """
    from ..atomic import refuse_existing
    from ..runtime.backends import get_backend
    from ..runtime.offline import load_sim_input
    from ..sim.vectors import write_vectors
    refuse_existing(Path(out), force)  # before the C simulation's compile, not after it
    design = Design.load(design_dir, kind="design")
    x = load_sim_input(design, inputs)
    if wild:
        rng = np.random.default_rng(0)
        x = np.concatenate([x, rng.standard_normal((wild,) + x.shape[1:]) * np.abs(x).max() * 1.5])
    y = get_backend("csim", design_dir, log=log).run(x)
    write_vectors(design, out, x, y, force=force)
    return len(x)
