"""A model directory: `model.onnx` plus `model.json` (labels, features, input shape, metrics)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from ..atomic import write_text_atomic
from ..errors import InputError
from ..frontend.features import FeatureConfig

MODEL_SCHEMA_VERSION = 1


@dataclass
class ModelInfo:
    """A model directory as loaded: its path, its ONNX file and model.json.

    Attributes:
        dir, onnx_path: the folder and its model.onnx.
        meta: model.json as read.
    """
    dir: Path
    onnx_path: Path
    meta: dict

    @property
    def labels(self) -> list[str]:
        """The model's class labels."""
        return list(self.meta["labels"])

    @property
    def feature(self) -> FeatureConfig:
        """The front end it was trained with."""
        return FeatureConfig.from_dict(self.meta["feature"])

    @property
    def input_name(self) -> str:
        """The ONNX graph's input name."""
        return self.meta["input"]["name"]


def read_json(path: Path) -> dict:
    """A JSON object from a file of ours (model.json, feature.json); InputError when it is
    missing, not JSON, or not an object."""
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError as exc:
        raise InputError(f"{path}: missing; rebuild the folder") from exc
    except json.JSONDecodeError as exc:
        raise InputError(f"{path}: not valid JSON ({exc.msg} at line {exc.lineno})") from exc
    except UnicodeDecodeError as exc:
        raise InputError(f"{path}: not valid JSON ({exc})") from exc
    if not isinstance(data, dict):
        raise InputError(f"{path}: want a JSON object")
    return data


def load_model_dir(path: str | Path) -> ModelInfo:
    """Load a model directory (model.onnx + model.json); InputError naming what is missing or malformed."""
    path = Path(path)
    if not path.is_dir():
        raise InputError(f"{path}: not a model directory (want model.onnx + model.json); "
                         "make one with `edge-asr export`")
    onnx_path, json_path = path / "model.onnx", path / "model.json"
    for p in (onnx_path, json_path):
        if not p.is_file():
            raise InputError(f"{path}: missing {p.name}; re-run `edge-asr export`")
    meta = read_json(json_path)
    for key in ("labels", "feature", "input"):
        if key not in meta:
            raise InputError(f"{json_path}: missing key '{key}'; re-run `edge-asr export`")
    return ModelInfo(path, onnx_path, meta)


def update_model_json(model_dir: str | Path, update) -> dict:
    """Read model_dir/model.json, let `update(meta)` change it in place, and write it back
    atomically (a temporary file renamed over it); returns the new content."""
    path = Path(model_dir) / "model.json"
    meta = read_json(path)
    update(meta)
    write_text_atomic(path, json.dumps(meta, indent=2) + "\n")
    return meta
