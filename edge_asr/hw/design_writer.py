"""The design.json record, made from hls4ml's final ModelGraph (the IR's writer side).

Every layer in hls4ml's order after all its optimizer passes, with the exact type of its
output, weights, biases, accumulator and tables, its scalar attributes, and its weights
as integer codes. `edge_asr.ir.write_design` checks and writes the record; the
simulator, the cost model and the board driver read it through `edge_asr.ir.Design`.
"""

from __future__ import annotations

import re

import numpy as np

from ..errors import DesignError
from ..ir.design import DESIGN_SCHEMA_VERSION
from ..sim.fixed import FixedType, quantize, to_float
from ..sim.tables import softmax_tables

_ROUNDING = {"TRN": "AP_TRN", "TRN_ZERO": "AP_TRN_ZERO", "RND": "AP_RND", "RND_ZERO": "AP_RND_ZERO",
             "RND_INF": "AP_RND_INF", "RND_MIN_INF": "AP_RND_MIN_INF", "RND_CONV": "AP_RND_CONV"}
_SATURATION = {"WRAP": "AP_WRAP", "SAT": "AP_SAT", "SAT_ZERO": "AP_SAT_ZERO", "SAT_SYM": "AP_SAT_SYM"}


def fixed_from_hls4ml(precision) -> FixedType | None:
    """hls4ml precision object -> FixedType (None for unspecified or non-fixed types)."""
    from hls4ml.model.types import FixedPrecisionType, IntegerPrecisionType
    if isinstance(precision, IntegerPrecisionType):
        return FixedType(precision.width, precision.width, bool(precision.signed))
    if isinstance(precision, FixedPrecisionType):
        rnd = precision.rounding_mode.name if precision.rounding_mode is not None else "TRN"
        sat = precision.saturation_mode.name if precision.saturation_mode is not None else "WRAP"
        return FixedType(precision.width, precision.integer, bool(precision.signed), _ROUNDING[rnd],
                         _SATURATION[sat], int(precision.saturation_bits or 0))
    return None


def quantize_weights_in_place(hls_model) -> None:
    """Put every weight exactly on its type's grid (round half to even, saturate).

    hls4ml prints weights as decimals and lets the C++ type convert them; on-grid values
    print exactly, so the hardware, the C simulation and design.json hold the same bits.
    """
    for layer in hls_model.get_layers():
        for var in layer.weights.values():
            t = fixed_from_hls4ml(var.type.precision)
            if t is None:
                continue
            exact = FixedType(t.width, t.integer, t.signed, "AP_RND_CONV", "AP_SAT")
            var.data = to_float(quantize(np.asarray(var.data, dtype=np.float64), exact), t).astype(np.float64)
            var.min, var.max = np.min(var.data), np.max(var.data)
            var.nonzeros = int(np.count_nonzero(var.data))
            var.nzeros = var.data_length - var.nonzeros


_SCALAR = (bool, int, float, str)


def _plain(value):
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, _SCALAR) or value is None:
        return value
    if isinstance(value, (list, tuple)) and all(isinstance(v, _SCALAR + (np.generic,)) for v in value):
        return [_plain(v) for v in value]
    return _NOT_PLAIN


_NOT_PLAIN = object()
_SKIP_ATTRS = {"config_cpp", "function_cpp", "include_header", "precision", "weight_data", "bias_data",
               "scale_data", "inputs", "outputs", "name", "class_name", "trace", "weight_quantizer",
               "bias_quantizer", "scale_quantizer", "index"}


def _cpp_typedefs(config_cpp: str) -> dict:
    """Types hls4ml only spells in the generated C++ (e.g. softmax's inp_norm_t)."""
    out = {}
    for m in re.finditer(r"typedef\s+(ap_u?fixed<[^>]*>|ap_u?int<[^>]*>)\s+(\w+)\s*;", config_cpp or ""):
        out[m.group(2)] = FixedType.parse(m.group(1)).to_dict()
    return out


def _cpp_table_sizes(config_cpp: str) -> dict:
    """The lookup-table sizes the generated C++ declares. They can differ from the layer's
    `table_size`: hls4ml 1.3's softmax template (SoftmaxConfigTemplate.format in
    backends/vivado/passes/core_templates.py) caps a stable softmax's exp table at the
    input's range, 2 ** (width - 1) entries for a signed input."""
    return {m.group(1): int(m.group(2))
            for m in re.finditer(r"static\s+const\s+unsigned\s+(\w*table_size)\s*=\s*(\d+)\s*;", config_cpp or "")}


def layer_record(layer) -> dict:
    """One hls4ml layer as design.json records it: kind, shapes, every type, scalar attributes, weights as codes."""
    from hls4ml.model.types import NamedType
    out_var = layer.get_output_variable()
    rec = {
        "name": layer.name,
        "class_name": layer.class_name,
        "index": int(layer.index),
        "inputs": list(layer.inputs),
        "input_layers": [n.name for n in (layer.get_input_node(i) for i in layer.inputs) if n is not None],
        "outputs": list(layer.outputs),
        "output_shape": [int(d) for d in out_var.shape],
        "output_type": _type_dict(out_var.type.precision),
        "attributes": {},
        "types": {},
        "weights": {},
    }
    for key, value in layer.attributes.items():
        if key in _SKIP_ATTRS:
            continue
        if isinstance(value, NamedType):
            rec["types"][key] = _type_dict(value.precision)
            continue
        plain = _plain(value)
        if plain is not _NOT_PLAIN:
            rec["attributes"][key] = plain
    rec["types"].update({k: v for k, v in _cpp_typedefs(layer.get_attr("config_cpp")).items()
                         if k not in rec["types"]})
    rec["attributes"].update(_cpp_table_sizes(layer.get_attr("config_cpp")))
    for wname, var in layer.weights.items():
        t = fixed_from_hls4ml(var.type.precision)
        data = np.asarray(var.data, dtype=np.float64)
        entry = {"shape": [int(d) for d in data.shape], "type": _type_dict(var.type.precision)}
        if t is not None:
            codes = quantize(data, t)
            if not np.array_equal(to_float(codes, t), data):
                raise DesignError(f"{layer.name}.{wname}: weights are not on their type's grid")
            entry["codes"] = codes.reshape(-1).tolist()
        else:
            entry["values"] = data.reshape(-1).tolist()
        rec["weights"][wname] = entry
    return rec


def _type_dict(precision) -> dict | None:
    t = fixed_from_hls4ml(precision)
    return t.to_dict() if t is not None else {"unsupported": str(precision)}


def design_record(hls_model, *, hls_backend: str, board: str | None, io_type: str, reuse_factor: int,
                  strategy: str, model_meta: dict | None, onnx_input_shape: list[int],
                  calibration: dict, versions: dict) -> dict:
    """The whole design.json record of an hls4ml model (layers, tables, input/output, board, part, clock, provenance)."""
    cfg = hls_model.config
    layers = [layer_record(layer) for layer in hls_model.get_layers()]
    for rec in layers:
        if rec["class_name"] == "Softmax" and rec["attributes"].get("implementation", "stable") == "stable":
            # the lookup tables as integer codes, computed as hls4ml's C++ fills them
            types = {k: FixedType.from_dict(rec["types"][k])
                     for k in ("inp_norm_t", "exp_table_t", "inv_inp_t", "inv_table_t")}
            exp, inv = softmax_tables(types, rec["attributes"])
            rec["tables"] = {"exp": exp.tolist(), "inv": inv.tolist(), "exp_type": rec["types"]["exp_table_t"],
                             "inv_type": rec["types"]["inv_table_t"]}
    first, last = layers[0], layers[-1]
    return {
        "schema_version": DESIGN_SCHEMA_VERSION,
        "name": cfg.get_project_name(),
        "backend": hls_backend,  # the JSON key users read; in code, hls_backend
        "board": board,
        "part": cfg.get_config_value("Part"),
        "clock_period_ns": float(cfg.get_config_value("ClockPeriod")),
        "io_type": io_type,
        "reuse_factor": reuse_factor,
        "strategy": strategy,
        "input": {"layer": first["name"], "shape": first["output_shape"], "type": first["output_type"],
                  "onnx_shape": onnx_input_shape,
                  "layout": "the ONNX input's order, batch dimension dropped (hls4ml inserts the transpose)"},
        "output": {"layer": last["name"], "shape": last["output_shape"], "type": last["output_type"]},
        "labels": (model_meta or {}).get("labels"),
        "calibration": calibration,
        "versions": versions,
        "layers": layers,
    }
