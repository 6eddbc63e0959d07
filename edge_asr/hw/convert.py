"""`edge-asr convert`: (Q)ONNX -> hls4ml dataflow design with design.json, fitted to its board.

    MODEL (dir or .onnx) -> onnxprep.prepare -> precision (calibrate, choose types)
        -> hls4ml 1.3 (Vitis, or VivadoAccelerator for a board) -> the fit (per-layer strategy
        and reuse factor, FIFO depths, within --budget of the board: hw/fit.py) -> hls4ml
        again with those choices -> weights put on their grid
        -> DESIGN_DIR/{hls/, hls4ml_model.fml, design.json, model.json, manifest.json}

The design directory is written to a temporary folder beside it and renamed at the end,
so an interrupted or failed conversion leaves nothing behind.
"""

from __future__ import annotations

import json
import shutil
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from ..atomic import atomic_dir, refuse_existing
from ..errors import InputError
from ..ir.design import write_design
from ..ir.manifest import write_manifest
from ..runtime.modeldir import read_json
from . import boards, hls4ml_fixes, onnxprep, precision, qonnx_types
from .conversion import BOARDS, FML, PROJECT_NAME, Conversion, convert_at
from .fit import FitError

__all__ = ["BOARDS", "FML", "PROJECT_NAME", "ConvertOptions", "convert", "load_calibration", "resolve_model"]

DEFAULT_BITS = 16
FALLBACK_BITS = (16, 14, 12, 10, 8)


@dataclass
class ConvertOptions:
    """Options of `edge-asr convert`.

    Attributes:
        board: pynq-z2 (board project), zcu104 or none (HLS IP only, no fit).
        io: stream or parallel (hls4ml's io type).
        reuse: one reuse factor for every layer (above 1 the Resource strategy), or None to
            let the fit choose per layer.
        budget: the share of the board's resources the fit may use.
        bits: width of activations and weights; None: DEFAULT_BITS, or with a board the
            widest of FALLBACK_BITS whose design fits it (the narrowing is logged).
        clock_ns: clock period.
        calib: calibration inputs (data directory, audio folder or .npy), or None.
        config: an hls4ml-style YAML overriding chosen types, or None.
        max_calib: calibration inputs used at most.
    """
    board: str = "pynq-z2"
    io: str = "stream"
    reuse: int | None = None
    bits: int | None = None
    clock_ns: float = 10.0
    calib: str | None = None
    config: str | None = None
    max_calib: int = 512
    budget: float = 0.7


def resolve_model(path: str | Path) -> tuple[Path, dict | None]:
    """(model.onnx path, model.json dict or None) of a model directory or a bare .onnx; InputError otherwise."""
    path = Path(path)
    if path.is_dir():
        onnx_path = path / "model.onnx"
        if not onnx_path.is_file():
            raise InputError(f"{path}: no model.onnx; give a model directory or an .onnx file")
    elif path.suffix == ".onnx" and path.is_file():
        onnx_path = path
    else:
        raise InputError(f"{path}: not a model directory or an .onnx file")
    if onnx_path.stat().st_size == 0:
        raise InputError(f"{onnx_path}: empty file; export the model again")
    meta_path = onnx_path.with_name("model.json")
    meta = read_json(meta_path) if meta_path.is_file() else None
    if path.is_dir() and meta and meta.get("qonnx"):
        # a quantization-aware export: its QONNX graph carries the trained types
        onnx_path = path / meta["qonnx"]
        if not onnx_path.is_file():
            raise InputError(f"{path}: model.json names {meta['qonnx']}, which is missing; export the model again")
    return onnx_path, meta


def load_calibration(calib: str | None, meta: dict | None, input_shape: list[int], limit: int) -> np.ndarray | None:
    """Calibration inputs (training rows of a data directory, audio, or an .npy), or None."""
    if calib is None:
        return None
    from ..data.loading import inputs_from
    from ..frontend.features import FeatureConfig
    feature = FeatureConfig.from_dict(meta["feature"]) if meta and meta.get("feature") else None
    return inputs_from(calib, tuple(input_shape[1:]), feature, n=limit, split="train")[0]


def _read_user_config(path: str | None) -> dict:
    if path is None:
        return {}
    import yaml
    p = Path(path)
    if not p.is_file():
        raise InputError(f"{p}: no such configuration file")
    try:
        data = yaml.safe_load(p.read_text()) or {}
    except yaml.YAMLError as exc:
        raise InputError(f"{p}: not valid YAML ({str(exc).splitlines()[0]})") from exc
    if not isinstance(data, dict) or not set(data) <= {"LayerName", "Model"}:
        raise InputError(f"{p}: want an hls4ml-style mapping with LayerName and/or Model sections")
    return data


def convert(model: str | Path, out: str | Path, opts: ConvertOptions, force: bool = False, log=print) -> Path:
    """Convert a (Q)ONNX model to an hls4ml dataflow design folder with design.json.

    Args:
        model: a model directory (model.onnx + model.json) or a bare .onnx file.
        out: the design folder to write (refused if it exists, unless force); written to a
            temporary folder and renamed, so a failure leaves nothing.
        opts: ConvertOptions (board, io, reuse, bits, clock, calibration, type overrides).
        log: where the chosen types and the summary go.

    Returns:
        The design folder (hls/, hls4ml_model.fml, design.json, model.json, model.onnx,
        manifest.json).

    Raises:
        InputError: bad options, an unreadable model or one with ops hls4ml cannot take (all
        named), or hls4ml refusing it; OutputExistsError: out exists without force.
    """
    t0 = time.time()
    out = Path(out)
    refuse_existing(out, force)
    _check_options(opts)
    onnx_path, meta = resolve_model(model)
    user_cfg = _read_user_config(opts.config)

    prepared, float_model = onnxprep.prepare(onnxprep.load(onnx_path), str(onnx_path))
    input_shape = [d.dim_value for d in float_model.graph.input[0].type.tensor_type.shape.dim]
    _check_model_json(meta, float_model, onnx_path)
    trained = qonnx_types.is_qonnx(prepared)
    if trained:
        # the types were trained: nothing to calibrate or narrow
        if opts.bits is not None:
            raise InputError(f"{onnx_path}: a QONNX model carries its own types (its Quant nodes); drop --bits")
        if opts.calib is not None:
            log("QONNX model: types come from its Quant nodes; --calib is not used")
        cal, widths = None, [None]
    else:
        x_cal = load_calibration(opts.calib, meta, input_shape, opts.max_calib)
        cal = precision.calibrate(float_model, prepared, x_cal) if x_cal is not None else None
        if opts.bits is not None or opts.board == boards.NO_BOARD:
            widths = [opts.bits or DEFAULT_BITS]
        else:
            widths = list(FALLBACK_BITS)
    hls4ml_fixes.apply()
    with atomic_dir(out) as tmp:
        conv = Conversion(opts=opts, onnx_path=onnx_path, meta=meta, prepared=prepared, input_shape=input_shape,
                          cal=cal, user_cfg=user_cfg, out_dir=tmp)
        for i, bits in enumerate(widths):
            try:
                record, types_table = convert_at(conv, bits)
                break
            except FitError as exc:
                if len(widths) == 1:
                    raise
                if i + 1 == len(widths):
                    raise FitError(f"at {bits} bits, the narrowest tried: {exc}") from exc
                log(f"{bits} bits do not fit {opts.board} at --budget {opts.budget} ({exc.short or exc}); trying "
                    f"{widths[i + 1]} bits (--bits keeps one width)")
        log(types_table)
        record["options"] = asdict(opts)
        write_design(tmp, record)
        _write_model_files(tmp, meta, onnx_path, trained)
        write_manifest(tmp, "design")
    cost = record["cost"]
    width = record["calibration"]["bits"] or "trained (QONNX)"
    log(f"wrote {out} ({BOARDS[opts.board][0]}, {opts.board}, io_{opts.io}, {width} bits) in {time.time() - t0:.1f} s; estimated "
        f"interval {cost['interval_cycles']} cycles, latency {cost['latency_cycles']} cycles"
        + (f", fits {opts.board} within {opts.budget:.0%}" if cost["fits"] else ""))
    return out


def _check_options(opts: ConvertOptions) -> None:
    """InputError for options no conversion can take."""
    if opts.board not in BOARDS:
        raise InputError(f"unknown --board {opts.board}; choose one of {', '.join(BOARDS)}")
    if opts.io not in ("stream", "parallel"):
        raise InputError("--io must be stream or parallel")
    if opts.bits is not None and not 4 <= opts.bits <= 32:
        raise InputError("--bits must be between 4 and 32")
    if opts.reuse is not None and opts.reuse < 1:
        raise InputError("--reuse must be at least 1")
    if not 0 < opts.budget <= 1:
        raise InputError(f"--budget {opts.budget}: give a share of the board between 0 and 1")


def _write_model_files(tmp: Path, meta: dict | None, onnx_path: Path, trained: bool) -> None:
    """The design's model.onnx (the float side `verify` runs) and model.json."""
    model_out = dict(meta or {"labels": None, "feature": None})
    model_out["source_onnx"] = str(onnx_path)
    if trained:
        # model.onnx: the QONNX graph in standard ops; a QDQ source is kept as the QONNX
        # graph it was read as
        import onnx
        qonnx_graph = onnxprep.qdq_to_quant(onnxprep.load(onnx_path)).model
        onnx.save(qonnx_graph, str(tmp / qonnx_types.QONNX_FILE))
        onnx.save(qonnx_types.lower_quant_nodes(qonnx_graph), str(tmp / "model.onnx"))
        model_out["qonnx"] = qonnx_types.QONNX_FILE
    else:
        shutil.copyfile(onnx_path, tmp / "model.onnx")
    (tmp / "model.json").write_text(json.dumps(model_out, indent=2) + "\n")


def _check_model_json(meta: dict | None, float_model, onnx_path: Path) -> None:
    """model.json must describe the graph: as many labels as outputs, its input shape."""
    if not meta:
        return
    where = onnx_path.with_name("model.json")
    n_out = [d.dim_value for d in float_model.graph.output[0].type.tensor_type.shape.dim][-1]
    labels = meta.get("labels")
    if labels is not None and n_out and len(labels) != n_out:
        raise InputError(f"{where}: {len(labels)} labels for a model with {n_out} outputs; export the model again")
    shape = (meta.get("input") or {}).get("shape")
    graph = [d.dim_value for d in float_model.graph.input[0].type.tensor_type.shape.dim]
    if shape and list(shape[1:]) != graph[1:]:
        raise InputError(f"{where}: records input shape {shape[1:]}, the graph takes {graph[1:]}; export the model "
                         "again")
