"""hls4ml optimizer passes of our own, in a flow that runs after the backend's default one.

SoftmaxTableTypes: hls4ml 1.3.0 takes a Softmax's `accum` type from the configuration but
leaves `exp_table`, `inv_table` and `inv_inp` at the backend defaults (fixed<18,8,RND,SAT>)
whatever the configuration says, and derives `inp_norm_t` from the input type by itself;
its defaults put outputs off by up to ~0.2 (precision.softmax_types). The pass gives each
Softmax the table types its configuration names.
"""

from __future__ import annotations

from .hls4ml_repair import HLS4ML_VERSION, Repair

SOFTMAX_TYPES = Repair("Softmax table types from the configuration", "pass", HLS4ML_VERSION,
                       "none found; hls4ml's open softmax work (fastmachinelearning/hls4ml#1494, #1531) changes "
                       "the tables but not this")
SOFTMAX_TYPE_KEYS = ("exp_table", "inv_table", "inv_inp", "inp_norm")
PASS = "edge_asr_softmax_table_types"
FLOW = "edge_asr:softmax_types"


def _configured(model, layer) -> dict:
    """The Precision section of the configuration entry a layer came from (hls4ml may have
    prefixed its name: Softmax_Softmax_0 from Softmax_0)."""
    names = model.config.config["HLSConfig"].get("LayerName") or {}
    source = layer.name if layer.name in names else next((n for n in names if layer.name.endswith(n)), None)
    return (names.get(source) or {}).get("Precision") or {}


def _pass_class():
    from hls4ml.backends.fpga.fpga_types import APTypeConverter, HLSTypeConverter
    from hls4ml.model.optimizer import OptimizerPass
    from hls4ml.model.types import NamedType

    class SoftmaxTableTypes(OptimizerPass):
        """Set a Softmax's table types (`exp_table_t`, ...) to the ones its configuration names."""

        def match(self, node) -> bool:
            """A Softmax whose configuration names a table type."""
            return node.class_name == "Softmax" and any(
                _configured(node.model, node).get(k, "auto") != "auto" for k in SOFTMAX_TYPE_KEYS)

        def transform(self, model, node) -> bool:
            """Set the types; the graph is unchanged (False: nothing to run again)."""
            to_hls = HLSTypeConverter(precision_converter=APTypeConverter())
            precision = _configured(model, node)
            for key in SOFTMAX_TYPE_KEYS:
                if precision.get(key, "auto") != "auto":  # 'auto': leave hls4ml's own choice
                    p = model.config.backend.convert_precision_string(precision[key])
                    node.set_attr(f"{key}_t", to_hls.convert(NamedType(f"{node.name}_{key}_t", p)))
            return False

    return SoftmaxTableTypes


def register() -> None:
    """Register the passes and their flow with hls4ml (idempotent)."""
    from hls4ml.model.flow.flow import flow_map, register_flow
    from hls4ml.model.optimizer import register_pass
    from hls4ml.model.optimizer.optimizer import optimizer_map
    if PASS not in optimizer_map:
        register_pass(PASS, _pass_class())
    if FLOW not in flow_map:
        register_flow(FLOW, [PASS])


def flows(backend: str) -> list[str]:
    """The flows a conversion runs: the backend's default one, then ours."""
    from hls4ml.backends import get_backend
    return [get_backend(backend).get_default_flow(), FLOW]
