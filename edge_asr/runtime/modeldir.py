"""A model directory: `model.onnx` plus `model.json` (labels, features, input shape, metrics)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from ..errors import InputError
from ..frontend.features import FeatureConfig

MODEL_SCHEMA_VERSION = 1


@dataclass
class ModelInfo:
    dir: Path
    onnx_path: Path
    meta: dict

    @property
    def labels(self) -> list[str]:
        return list(self.meta["labels"])

    @property
    def feature(self) -> FeatureConfig:
        return FeatureConfig.from_dict(self.meta["feature"])

    @property
    def input_name(self) -> str:
        return self.meta["input"]["name"]


def load_model_dir(path: str | Path) -> ModelInfo:
    path = Path(path)
    if not path.is_dir():
        raise InputError(f"{path}: not a model directory (want model.onnx + model.json); "
                         "make one with `edge-asr export`")
    onnx_path, json_path = path / "model.onnx", path / "model.json"
    for p in (onnx_path, json_path):
        if not p.is_file():
            raise InputError(f"{path}: missing {p.name}; re-run `edge-asr export`")
    try:
        meta = json.loads(json_path.read_text())
    except json.JSONDecodeError as exc:
        raise InputError(f"{json_path}: not valid JSON ({exc.msg} at line {exc.lineno})") from None
    for key in ("labels", "feature", "input"):
        if key not in meta:
            raise InputError(f"{json_path}: missing key '{key}'; re-run `edge-asr export`")
    return ModelInfo(path, onnx_path, meta)
