"""Files that travel with the package (the shipped models and our own HLS/Tcl sources),
and the folder of files edge-asr builds and keeps (`cache_root`).

They live at the top of the repository (models/, hls/). An installed wheel carries the
same folders as edge_asr/models and edge_asr/hls (pyproject.toml's package-dir), so they
are looked up there first and beside the package (a source checkout or an editable
install) second. $EDGE_ASR_MODELS names another folder of models. Standard library only.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from .errors import InputError

_PACKAGE = Path(__file__).resolve().parent
SHIPPED_MODEL_NAME = "kws-digits"


def cache_root() -> Path:
    """edge-asr's cache folder (builds kept between runs): $EDGE_ASR_CACHE, else
    ~/.cache/edge-asr."""
    return Path(os.environ.get("EDGE_ASR_CACHE", Path.home() / ".cache" / "edge-asr"))


def resource_dir(name: str) -> Path:
    """The folder `name` ("models" or "hls") as installed, or in the source checkout.

    Raises InputError when neither exists (a broken install)."""
    for candidate in (_PACKAGE / name, _PACKAGE.parent / name):
        if candidate.is_dir():
            return candidate
    raise InputError(f"edge-asr's {name}/ folder is missing from {_PACKAGE} and {_PACKAGE.parent}; "
                     "reinstall edge-asr")


def hls_source(*parts: str) -> Path:
    """A file of our own HLS/Tcl/board sources (hls/ in the repository)."""
    path = resource_dir("hls").joinpath(*parts)
    if not path.is_file():
        raise InputError(f"{path}: missing from edge-asr's hls/ folder; reinstall edge-asr")
    return path


def shipped_model(name: str = SHIPPED_MODEL_NAME) -> Path:
    """The model directory of a shipped model.

    Args:
        name: the model's folder name (default: the keyword spotter kws-digits).

    Returns:
        Its directory: under $EDGE_ASR_MODELS when set, else in the installed or
        checked-out models/ folder.

    Raises:
        InputError: no such model there.
    """
    root = Path(os.environ["EDGE_ASR_MODELS"]) if os.environ.get("EDGE_ASR_MODELS") else resource_dir("models")
    path = root / name
    if not (path / "model.json").is_file():
        raise InputError(f"{path}: no shipped model {name!r} there; give a model directory instead")
    return path


def fill_template(text: str, values: dict[str, object]) -> str:
    """Replace every @KEY@ in text; a placeholder left unfilled, or a value the text has no
    placeholder for, is an error (a template and its caller out of step)."""
    for key, value in values.items():
        mark = f"@{key}@"
        if mark not in text:
            raise ValueError(f"template has no placeholder {mark}")
        text = text.replace(mark, str(value))
    left = re.findall(r"@[A-Z0-9_]+@", text)
    if left:
        raise ValueError(f"template placeholders left unfilled: {sorted(set(left))}")
    return text
