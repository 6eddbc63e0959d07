"""One conversion at one width, in steps:

    configure      types for every layer and the hls4ml configuration that asks for them
    run_hls4ml     hls4ml's ONNX frontend, our repairs and passes, weights on their grid,
                   the design.json record
    fit_and_rerun  with a board: the fit chooses each kernel's strategy and reuse factor
                   from the first design's costs, and hls4ml runs again with those choices
                   (hls4ml's own optimizer passes decide the layers the fit costs, so the
                   first run cannot be skipped)
    record         the cost estimate, the project files (repaired) and hls4ml's model file

`Conversion` holds what every step reads and none changes. hw/convert.py (the verb) runs
these steps at each width it tries.
"""

from __future__ import annotations

import contextlib
import copy
import io
from dataclasses import dataclass
from pathlib import Path

from .. import __version__
from ..errors import InputError, raised_by_edge_asr
from ..ir.design import Design
from . import boards, hls4ml_fixes, precision, qonnx_types
from .cost import design_costs, summarize
from .fit import Choice, fit

# board -> (hls4ml backend, i.e. the toolchain; FPGA part), from the one table in boards.py
BOARDS = {**{b.name: (b.hls_backend, b.part) for b in boards.BOARDS.values()},
          boards.NO_BOARD: ("Vitis", boards.NO_BOARD_PART)}
PROJECT_NAME = "edge_asr_net"
FML = "hls4ml_model.fml"
# what hls4ml gives the types a QONNX graph leaves open: the scales and results of the
# ApplyAlpha layers it makes of non-power-of-two quantizers, and the values between them
QONNX_DEFAULT_PRECISION = "fixed<32,12,RND_CONV,SAT>"
KERNEL_CLASSES = ("Dense", "Conv1D")


@dataclass(frozen=True)
class Conversion:
    """What every step of one conversion reads: the options, the model and its graphs, the
    calibration, the user's --config, and the folder the design is written into."""
    opts: object  # convert.ConvertOptions
    onnx_path: Path
    meta: dict | None
    prepared: object  # the graph hls4ml reads (qonnx ModelWrapper)
    input_shape: list[int]
    cal: precision.Calibration | None
    user_cfg: dict
    out_dir: Path

    @property
    def hls_backend(self) -> str:
        """hls4ml's backend for the board."""
        return BOARDS[self.opts.board][0]

    @property
    def board(self) -> str | None:
        """The board, or None for HLS IP alone."""
        return self.opts.board if self.opts.board != boards.NO_BOARD else None


@dataclass(frozen=True)
class Attempt:
    """One width's choices: the types of every layer (ours with the user's overrides, by
    ONNX node name) and the rows that describe them; bits None for a QONNX graph's own."""
    bits: int | None
    layers: dict
    rows: list[dict]
    reuse: int
    strategy: str


def merge_layer_config(dst: dict, src: dict) -> None:
    """LayerName entries of `src` into `dst`: Precision sections key by key, the rest whole."""
    for name, cfg in src.items():
        entry = dst.setdefault(name, {})
        for k, v in cfg.items():
            if k == "Precision" and isinstance(v, dict):
                entry.setdefault("Precision", {}).update(v)
            else:
                entry[k] = v


@contextlib.contextmanager
def hls4ml_refusals(onnx_path: Path):
    """hls4ml refusing the graph becomes one InputError line, its traceback kept as the cause
    (`--debug` shows it). What our own code raises, in our parser or a pass, stays what it
    is: a bug of ours, not a limit of hls4ml's."""
    try:
        yield
    except Exception as exc:
        if isinstance(exc, InputError) or raised_by_edge_asr(exc):
            raise
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise InputError(f"{onnx_path}: hls4ml 1.3 cannot convert this graph ({first}); "
                         "see docs/cli.md (Convert) for the layers it takes") from exc


def configure(conv: Conversion, bits: int | None) -> tuple[Attempt, dict]:
    """The types at this width (None: the QONNX graph's own) and the hls4ml configuration that
    asks for them, the user's --config applied over ours."""
    import hls4ml
    if bits is None:
        layers, rows = qonnx_types.choose_types(conv.prepared)
    else:
        layers, rows = precision.choose_precision(conv.prepared, conv.cal, bits)
    reuse = conv.opts.reuse or 1
    attempt = Attempt(bits, layers, rows, reuse, "Latency" if reuse == 1 else "Resource")
    with hls4ml_refusals(conv.onnx_path):
        cfg = hls4ml.utils.config_from_onnx_model(
            conv.prepared, granularity="name", backend=conv.hls_backend,
            default_precision=f"fixed<{bits},6>" if bits else QONNX_DEFAULT_PRECISION, default_reuse_factor=reuse)
    cfg["Model"]["Strategy"] = attempt.strategy
    cfg["Flows"] = hls4ml_fixes.flows(conv.hls_backend)
    merge_layer_config(layers, conv.user_cfg.get("LayerName") or {})
    cfg["Model"].update(conv.user_cfg.get("Model") or {})
    merge_layer_config(cfg["LayerName"], layers)
    return attempt, cfg


def _stream_type(conv: Conversion, attempt: Attempt, name: str, chosen) -> str:
    # The board wrapper's stream types: the design's own input and output types, modes
    # included (user overrides too), so the DMA moves exact fixed-point codes and the C
    # simulation's float -> T_in conversion rounds as the host's coding into the input type
    # does (hls4ml would otherwise truncate and wrap there).
    t = attempt.layers.get(name, {}).get("Precision", {}).get("result")
    return t if t and t != "auto" else precision.str_type(chosen)


def run_hls4ml(conv: Conversion, attempt: Attempt, cfg: dict):
    """hls4ml on a copy of `cfg` (hls4ml adds its renamed layers to the configuration it is
    given), weights put on their grid; (hls4ml model, design.json record)."""
    import hls4ml

    from .design_writer import design_record, quantize_weights_in_place
    hls_backend, part = BOARDS[conv.opts.board]
    kwargs = dict(output_dir=str(conv.out_dir / "hls"), project_name=PROJECT_NAME, backend=hls_backend,
                  io_type=f"io_{conv.opts.io}", hls_config=copy.deepcopy(cfg), part=part,
                  clock_period=conv.opts.clock_ns)
    if hls_backend == "VivadoAccelerator":
        graph = conv.prepared.graph
        kwargs.update(board=conv.opts.board, interface="axi_stream", driver="python",
                      input_type=_stream_type(conv, attempt, graph.input[0].name, attempt.rows[0]["result"]),
                      output_type=_stream_type(conv, attempt, graph.node[-1].name, attempt.rows[-1]["result"]))
    with hls4ml_refusals(conv.onnx_path):
        hm = hls4ml.converters.convert_from_onnx_model(conv.prepared, **kwargs)
    quantize_weights_in_place(hm)
    record = design_record(
        hm, hls_backend=hls_backend, board=conv.board, io_type=f"io_{conv.opts.io}", reuse_factor=attempt.reuse,
        strategy=attempt.strategy, model_meta=conv.meta, onnx_input_shape=conv.input_shape,
        calibration={"n": conv.cal.n if conv.cal else 0,
                     "source": str(conv.opts.calib) if conv.opts.calib and attempt.bits else None,
                     "margin": precision.MARGIN, "bits": attempt.bits,
                     "user_config": str(conv.opts.config) if conv.opts.config else None},
        versions={"edge_asr": __version__, "hls4ml": hls4ml.__version__})
    return hm, record


def fit_and_rerun(conv: Conversion, attempt: Attempt, cfg: dict, hm, record: dict):
    """With a board: the fit's choices from the first design, and hls4ml run again with them;
    (hls4ml model, record, the fit or None without a board). FitError when nothing fits."""
    if conv.board is None:
        return hm, record, None
    first = Design(record)
    names = config_names(first, cfg["LayerName"])
    fitted = fit(first, boards.board(conv.opts.board), conv.opts.budget,
                 fixed=fixed_choices(first, names, conv.user_cfg, conv.opts.reuse))
    chosen = copy.deepcopy(cfg)
    for name, choice in fitted["choices"].items():
        chosen["LayerName"].setdefault(names[name], {}).update(
            ReuseFactor=choice.reuse_factor, Strategy=choice.strategy.capitalize())
    hm, record = run_hls4ml(conv, attempt, chosen)
    record["strategy"] = _overall_strategy(fitted["choices"])
    return hm, record, fitted


def record_design(conv: Conversion, hm, record: dict, fitted: dict | None) -> dict:
    """The record with its FIFO depths and cost estimate; the project files written (and
    repaired) and hls4ml's model file saved beside them."""
    from hls4ml.utils.serialization import serialize_model
    design = Design(record)
    depths = fitted["fifo_depths"] if fitted else {}
    record["fifo_depths"] = depths
    available = boards.board(conv.opts.board).available() if conv.board else None
    record["cost"] = summarize(design_costs(design, fifo_depths=depths), design.clock_period_ns, available,
                               conv.opts.budget)
    record["cost"]["board"] = design.board
    if fitted:
        _check_applied(record, fitted)
    hls4ml_fixes.write_project(hm, hls4ml_fixes.stream_depths(design, depths))
    serialize_model(hm, conv.out_dir / FML)
    return record


def convert_at(conv: Conversion, bits: int | None) -> tuple[dict, str]:
    """Every step at one width into conv.out_dir; (design record, table of chosen types).
    FitError when a board is set and nothing at this width fits it."""
    hls_log = io.StringIO()
    with contextlib.redirect_stdout(hls_log):
        attempt, cfg = configure(conv, bits)
        hm, record = run_hls4ml(conv, attempt, cfg)
        hm, record, fitted = fit_and_rerun(conv, attempt, cfg, hm, record)
        record = record_design(conv, hm, record, fitted)
    (conv.out_dir / "hls4ml.log").write_text(hls_log.getvalue())
    if bits is None:
        record["quantization"] = {"source": "qonnx", "set_here": [_row_text(r) for r in attempt.rows]}
        return record, qonnx_types.format_table(hm)
    return record, precision.format_table(attempt.rows, conv.cal is not None)


def _row_text(row: dict) -> str:
    kinds = ", ".join(f"{k} {row[k].cpp()}" for k in ("result", "bias") if row.get(k) is not None)
    return f"{row['layer']} ({row['op']}): {kinds}; {row['note']}"


def config_names(design: Design, layer_config: dict) -> dict[str, str]:
    """hls4ml layer name -> the LayerName key of the ONNX node it came from (hls4ml prefixes
    the kind: Conv1D_Conv_1 came from Conv_1)."""
    out = {}
    for layer in design.layers:
        key = layer.name if layer.name in layer_config else next(
            (k for k in layer_config if layer.name.endswith("_" + k)), layer.name)
        out[layer.name] = key
    return out


def fixed_choices(design: Design, names: dict[str, str], user_cfg: dict, reuse: int | None) -> dict[str, Choice]:
    """The kernel layers whose strategy and reuse factor the user set (--reuse for all, or
    --config's LayerName ReuseFactor/Strategy), as hls4ml applied them."""
    fixed = {}
    user_layers = user_cfg.get("LayerName") or {}
    model_wide = reuse is not None or {"ReuseFactor", "Strategy"} & set(user_cfg.get("Model") or {})
    for layer in design.layers:
        if layer.class_name not in KERNEL_CLASSES:
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
