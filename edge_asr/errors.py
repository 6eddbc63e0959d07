"""One exception family. The CLI turns any EdgeAsrError into one line and exit code 2."""


class EdgeAsrError(Exception):
    """Base of every error a user can cause or fix. The message says what, where, what to do."""


class AudioError(EdgeAsrError):
    """An audio file that cannot be used as it is."""


class InputError(EdgeAsrError):
    """A missing or malformed input: a model directory, a manifest, a data folder."""


class OutputExistsError(EdgeAsrError):
    """An output that exists and would be overwritten without --force."""


class ToolMissingError(EdgeAsrError):
    """An external program (a TTS engine, a vendor tool) that is not installed."""


class ExportError(EdgeAsrError):
    """An exported model that fails its checks (onnx.checker, parity with PyTorch)."""
