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

import contextlib
import copy
import io
import json
import shutil
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from .. import __version__
from ..atomic import atomic_dir, refuse_existing
from ..errors import InputError
from ..ir.design import Design, write_design
from ..ir.manifest import write_manifest
from ..runtime.modeldir import read_json
from . import boards, hls4ml_fixes, onnxprep, precision, qonnx_types
from .cost import design_costs, summarize
from .fit import Choice, FitError, fit

# board -> (hls4ml backend, i.e. the toolchain; FPGA part), from the one table in boards.py
BOARDS = {**{b.name: (b.hls_backend, b.part) for b in boards.BOARDS.values()},
          boards.NO_BOARD: ("Vitis", boards.NO_BOARD_PART)}
PROJECT_NAME = "edge_asr_net"
FML = "hls4ml_model.fml"
DEFAULT_BITS = 16
FALLBACK_BITS = (16, 14, 12, 10, 8)
# what hls4ml gives the types a QONNX graph leaves open: the scales and results of the
# ApplyAlpha layers it makes of non-power-of-two quantizers, and the values between them
QONNX_DEFAULT_PRECISION = "fixed<32,12,RND_CONV,SAT>"


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


def _merge_user_config(layers: dict, model_cfg: dict, user: dict) -> None:
    for name, cfg in (user.get("LayerName") or {}).items():
        dst = layers.setdefault(name, {})
        for k, v in cfg.items():
            if k == "Precision" and isinstance(v, dict):
                dst.setdefault("Precision", {}).update(v)
            else:
                dst[k] = v
    for k, v in (user.get("Model") or {}).items():
        model_cfg[k] = v


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
        raise InputError(f"{p}: not valid YAML ({str(exc).splitlines()[0]})") from None
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
        cal = precision.calibrate(float_model, x_cal) if x_cal is not None else None
        if opts.bits is not None or opts.board == boards.NO_BOARD:
            widths = [opts.bits or DEFAULT_BITS]
        else:
            widths = list(FALLBACK_BITS)
    hls4ml_fixes.apply()
    with atomic_dir(out) as tmp:
        for i, bits in enumerate(widths):
            try:
                record, types_table = _convert_at(bits, prepared, float_model, cal, meta, onnx_path, input_shape,
                                                  user_cfg, opts, tmp)
                break
            except FitError as exc:
                if len(widths) == 1:
                    raise
                if i + 1 == len(widths):
                    raise FitError(f"at {bits} bits, the narrowest tried: {exc}") from None
                log(f"{bits} bits do not fit {opts.board} at --budget {opts.budget} ({exc.short or exc}); trying "
                    f"{widths[i + 1]} bits (--bits keeps one width)")
        log(types_table)
        record["options"] = asdict(opts)
        write_design(tmp, record)
        model_out = dict(meta or {"labels": None, "feature": None})
        model_out["source_onnx"] = str(onnx_path)
        if trained:
            # model.onnx: the QONNX graph in standard ops, the float side `verify` runs
            import onnx

            # a QDQ source is kept as the QONNX graph it was read as
            qonnx_graph = onnxprep.qdq_to_quant(onnxprep.load(onnx_path)).model
            onnx.save(qonnx_graph, str(tmp / qonnx_types.QONNX_FILE))
            onnx.save(qonnx_types.lower_quant_nodes(qonnx_graph), str(tmp / "model.onnx"))
            model_out["qonnx"] = qonnx_types.QONNX_FILE
        else:
            shutil.copyfile(onnx_path, tmp / "model.onnx")
        (tmp / "model.json").write_text(json.dumps(model_out, indent=2) + "\n")
        write_manifest(tmp, "design")
    cost = record["cost"]
    width = record["calibration"]["bits"] or "trained (QONNX)"
    log(f"wrote {out} ({BOARDS[opts.board][0]}, {opts.board}, io_{opts.io}, {width} bits) in {time.time() - t0:.1f} s; estimated "
        f"interval {cost['interval_cycles']} cycles, latency {cost['latency_cycles']} cycles"
        + (f", fits {opts.board} within {opts.budget:.0%}" if cost["fits"] else ""))
    return out


def _convert_at(bits: int | None, prepared, float_model, cal, meta, onnx_path: Path, input_shape: list, user_cfg: dict,
                opts: ConvertOptions, tmp: Path) -> tuple[dict, str]:
    """Convert at one width into `tmp`: types, the hls4ml project, the fit. Returns the design
    record and the table of chosen types; raises FitError when the board is set and nothing
    at this width fits it. bits None: a QONNX graph, whose Quant nodes give the types."""
    if bits is None:
        layers, rows = qonnx_types.choose_types(prepared)
    else:
        layers, rows = precision.choose_precision(prepared, cal, bits)

    hls_backend, part = BOARDS[opts.board]
    reuse = opts.reuse or 1
    strategy = "Latency" if reuse == 1 else "Resource"
    import hls4ml

    def to_hls(cfg: dict, out_dir: Path):
        kwargs = dict(output_dir=str(out_dir), project_name=PROJECT_NAME, backend=hls_backend,
                      io_type=f"io_{opts.io}", hls_config=cfg, part=part, clock_period=opts.clock_ns)
        if hls_backend == "VivadoAccelerator":
            # the stream types follow the design's final input/output types, user
            # overrides included (the wrapper would otherwise truncate them)
            def final_type(name: str, chosen) -> str:
                t = layers.get(name, {}).get("Precision", {}).get("result")
                return t if t and t != "auto" else _accel_type(chosen)
            kwargs.update(board=opts.board, interface="axi_stream", driver="python",
                          input_type=final_type(prepared.graph.input[0].name, rows[0]["result"]),
                          output_type=final_type(prepared.graph.node[-1].name, rows[-1]["result"]))
        try:
            hm = hls4ml.converters.convert_from_onnx_model(prepared, **kwargs)
        except Exception as exc:
            raise _hls4ml_refused(onnx_path, exc) from None
        from .design_writer import design_record, quantize_weights_in_place
        hls4ml_fixes.apply_softmax_types(hm, layers)
        quantize_weights_in_place(hm)
        record = design_record(
            hm, hls_backend=hls_backend, board=opts.board if opts.board != boards.NO_BOARD else None,
            io_type=f"io_{opts.io}", reuse_factor=reuse, strategy=strategy, model_meta=meta,
            onnx_input_shape=input_shape,
            calibration={"n": cal.n if cal else 0, "source": str(opts.calib) if opts.calib and bits else None,
                         "margin": precision.MARGIN, "bits": bits,
                         "user_config": str(opts.config) if opts.config else None},
            versions={"edge_asr": __version__, "hls4ml": hls4ml.__version__})
        return hm, record

    hls_log = io.StringIO()
    with contextlib.redirect_stdout(hls_log):
        try:
            cfg = hls4ml.utils.config_from_onnx_model(prepared, granularity="name", backend=hls_backend,
                                                      default_precision=f"fixed<{bits},6>" if bits else QONNX_DEFAULT_PRECISION,
                                                      default_reuse_factor=reuse)
        except Exception as exc:
            raise _hls4ml_refused(onnx_path, exc) from None
        cfg["Model"]["Strategy"] = strategy
        _merge_user_config(layers, cfg["Model"], user_cfg)
        for name, lc in layers.items():
            dst = cfg["LayerName"].setdefault(name, {})
            for k, v in lc.items():
                if k == "Precision":
                    dst.setdefault("Precision", {}).update(v)
                else:
                    dst[k] = v
        # hls4ml adds its renamed layers to the configuration it is given: keep ours clean
        hm, record = to_hls(copy.deepcopy(cfg), tmp / "hls")
        fitted = None
        if opts.board != boards.NO_BOARD:
            first = Design(record)
            names = _config_names(first, cfg["LayerName"])
            fitted = fit(first, boards.board(opts.board), opts.budget,
                         fixed=_fixed_choices(first, cfg, names, user_cfg, opts.reuse))
            for name, choice in fitted["choices"].items():
                cfg["LayerName"].setdefault(names[name], {}).update(
                    ReuseFactor=choice.reuse_factor, Strategy=choice.strategy.capitalize())
            hm, record = to_hls(cfg, tmp / "hls")
            record["strategy"] = _overall_strategy(fitted["choices"])
        design = Design(record)
        depths = fitted["fifo_depths"] if fitted else {}
        record["fifo_depths"] = depths
        available = boards.board(opts.board).available() if opts.board != boards.NO_BOARD else None
        record["cost"] = summarize(design_costs(design, fifo_depths=depths), design.clock_period_ns,
                                   available, opts.budget)
        record["cost"]["board"] = design.board
        if fitted:
            _check_applied(record, fitted)
        hls4ml_fixes.write_project(hm, hls4ml_fixes.stream_depths(design, depths))
        from hls4ml.utils.serialization import serialize_model
        serialize_model(hm, tmp / FML)
    (tmp / "hls4ml.log").write_text(hls_log.getvalue())
    if bits is None:
        record["quantization"] = {"source": "qonnx", "set_here": [_row_text(r) for r in rows]}
        return record, qonnx_types.format_table(hm)
    return record, precision.format_table(rows, cal is not None)


def _row_text(row: dict) -> str:
    kinds = ", ".join(f"{k} {row[k].cpp()}" for k in ("result", "bias") if row.get(k) is not None)
    return f"{row['layer']} ({row['op']}): {kinds}; {row['note']}"


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


def _config_names(design: Design, layer_config: dict) -> dict[str, str]:
    """hls4ml layer name -> the LayerName key of the ONNX node it came from (hls4ml prefixes
    the kind: Conv1D_Conv_1 came from Conv_1)."""
    out = {}
    for layer in design.layers:
        key = layer.name if layer.name in layer_config else next(
            (k for k in layer_config if layer.name.endswith("_" + k)), layer.name)
        out[layer.name] = key
    return out


def _fixed_choices(design: Design, cfg: dict, names: dict[str, str], user_cfg: dict,
                   reuse: int | None) -> dict[str, Choice]:
    """The kernel layers whose strategy and reuse factor the user set (--reuse for all, or
    --config's LayerName ReuseFactor/Strategy), as hls4ml applied them."""
    fixed = {}
    user_layers = user_cfg.get("LayerName") or {}
    model_wide = reuse is not None or {"ReuseFactor", "Strategy"} & set(user_cfg.get("Model") or {})
    for layer in design.layers:
        if layer.class_name not in ("Dense", "Conv1D"):
            continue
        mine = user_layers.get(names[layer.name], {})
        if model_wide or "ReuseFactor" in mine or "Strategy" in mine:
            fixed[layer.name] = Choice(layer.attributes.get("strategy", "latency").lower(),
                                       int(layer.attributes.get("reuse_factor", 1)))
    return fixed


def _overall_strategy(choices: dict[str, Choice]) -> str:
    kinds = {c.strategy for c in choices.values()}
    return kinds.pop().capitalize() if len(kinds) == 1 else "Mixed"


def _check_applied(record: dict, fitted: dict) -> None:
    """hls4ml took every choice as given (a valid reuse factor is never moved)."""
    for layer in record["layers"]:
        choice = fitted["choices"].get(layer["name"])
        got = (layer["attributes"].get("strategy", "").lower(), layer["attributes"].get("reuse_factor"))
        if choice and got != (choice.strategy, choice.reuse_factor):
            raise InputError(f"layer {layer['name']}: hls4ml made it {got[0]} at reuse factor {got[1]}, the fit "
                             f"chose {choice.strategy} at {choice.reuse_factor}; report this")


def _hls4ml_refused(onnx_path: Path, exc: Exception) -> InputError:
    """hls4ml's own limits, as one line (the caller writes nothing)."""
    first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return InputError(f"{onnx_path}: hls4ml 1.3 cannot convert this graph ({first}); "
                      "see docs/cli.md (Convert) for the layers it takes")


def _accel_type(t) -> str:
    # The board wrapper's stream types: the design's own input and output types, modes
    # included, so the DMA moves exact fixed-point codes and the C simulation's float ->
    # T_in conversion rounds as the host's coding into the input type does (hls4ml would
    # otherwise truncate and wrap there).
    return precision.str_type(t)
