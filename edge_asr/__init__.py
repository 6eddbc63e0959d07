"""edge-asr: speech acoustic models to PYNQ FPGA designs, checkable without a board.

The public API, imported lazily (`import edge_asr` loads nothing heavy; each name loads
its module on first use, so the base install and the board image import only what they
run):

    Recognizer, RecognizerConfig, Stream   streaming keyword recognition (sherpa-onnx's shape)
    Design, load_design, FixedType         a converted design (design.json) and its types
    simulate, simulate_codes, SimResult    the bit-exact simulator
    get_backend                            onnx / sim / csim / pynq behind one interface
    convert, ConvertOptions                (Q)ONNX -> hls4ml design ([convert] extra)
    EdgeAsrOverlay                         the PYNQ driver (pynq, on a board or simulated)
    shipped_model                          the shipped model's directory
    EdgeAsrError                           the one exception family

    import edge_asr
    rec = edge_asr.Recognizer.from_design("kws-design")
    print(rec.recognize_file("clip.wav")["text"])
"""

from __future__ import annotations

import importlib

__version__ = "0.1.0"

_API = {
    "Recognizer": "edge_asr.runtime.recognizer",
    "RecognizerConfig": "edge_asr.runtime.recognizer",
    "Stream": "edge_asr.runtime.stream",
    "Design": "edge_asr.ir.design",
    "load_design": "edge_asr.ir.design",
    "FixedType": "edge_asr.ir.types",
    "simulate": "edge_asr.sim.engine",
    "simulate_codes": "edge_asr.sim.engine",
    "SimResult": "edge_asr.sim.engine",
    "get_backend": "edge_asr.runtime.backends",
    "convert": "edge_asr.hw.convert",
    "ConvertOptions": "edge_asr.hw.convert",
    "EdgeAsrOverlay": "edge_asr.deploy.driver",
    "shipped_model": "edge_asr.resources",
    "EdgeAsrError": "edge_asr.errors",
}

__all__ = sorted(_API) + ["__version__"]


def __getattr__(name: str):
    module = _API.get(name)
    if module is None:
        raise AttributeError(f"module 'edge_asr' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # the next access skips this function
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_API))
