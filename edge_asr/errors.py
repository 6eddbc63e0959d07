"""One exception family. The CLI turns any EdgeAsrError into one line and exit code 2.

Every error a user can cause or fix is an `EdgeAsrError`; its message says what went
wrong, where (a path, a layer, an option) and what to do. Where a standard exception
type also fits (ValueError, RuntimeError), the class derives from it too, so that code
catching the standard type keeps working. tests/test_layout.py checks that every
exception class defined in the package belongs to this family.
"""

from pathlib import Path

_PACKAGE = Path(__file__).resolve().parent


def raised_by_edge_asr(exc: BaseException) -> bool:
    """True when the innermost frame of an exception's traceback is this package's own code:
    where a library (hls4ml, g++ through hls4ml) is wrapped, what it raises becomes one line
    for the user, and what we raise stays a bug of ours."""
    tb = exc.__traceback__
    while tb is not None and tb.tb_next is not None:
        tb = tb.tb_next
    return tb is not None and Path(tb.tb_frame.f_code.co_filename).resolve().is_relative_to(_PACKAGE)


class EdgeAsrError(Exception):
    """Base of every error a user can cause or fix. The message says what, where, what to do."""


class AudioError(EdgeAsrError):
    """An audio file that cannot be used as it is."""


class InputError(EdgeAsrError):
    """A missing or malformed input: a model directory, a manifest, a data folder, an option."""


class OutputExistsError(EdgeAsrError):
    """An output that exists and would be overwritten without --force."""


class ToolMissingError(EdgeAsrError):
    """An external program or package (a TTS engine, a vendor tool, an extra) that is not installed."""


class ExportError(EdgeAsrError):
    """An exported model that fails its checks (onnx.checker, parity with PyTorch)."""


class FixedPointError(EdgeAsrError, ValueError):
    """A fixed-point type that is not legal (width, modes), or a value no type can hold exactly."""


class DesignError(InputError):
    """A design.json that is missing, malformed, of another schema version, or inconsistent
    (a code outside its type, a type that is not legal)."""


class SimError(EdgeAsrError):
    """A design the simulator cannot run (a layer kind or option it does not simulate)."""
