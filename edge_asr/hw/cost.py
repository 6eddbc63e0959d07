"""A cost model of the kernels hls4ml 1.3 emits: per-layer resources, interval and latency.

Every figure here is an **estimate from hls4ml's rules, not a synthesis result**. The rules,
with where they come from (hls4ml 1.3.0's templates/vivado/nnet_utils and backends):

- Valid reuse factors: `FPGABackend._validate_reuse_factor` (fpga_backend.py): with
  multfactor = min(n_in, rf), ceil(n_in * n_out / multfactor) divisible by n_out (or
  rf >= n_in), rf a multiple of n_in when rf > n_in, and n_in * n_out divisible by rf.
- Latency strategy (nnet_dense_latency.h): the Product loops are unrolled in full
  (n_in * n_out products), `PIPELINE II=reuse_factor`, `ALLOCATION ... mul limit=
  multiplier_limit` with multiplier_limit = ceil(n_in * n_out / rf); weights are constants.
- Resource strategy (nnet_dense_resource.h): block_factor = ceil(n_in * n_out / rf)
  products unrolled in `MultLoop`, inside `ReuseLoop` of rf iterations at II=1; weights
  `ARRAY_RESHAPE block factor=block_factor` into `ROM_nP_BRAM` when rf > 1: a memory rf
  words deep and block_factor weights wide.
- Vivado HLS stops unrolling a loop past about 4,096 iterations (`XFORM 203-504`; hls4ml
  issues #1013 and #904; `config_array_partition -maximum_size 4096` in the
  VivadoAccelerator writer): Latency needs n_in * n_out <= 4,096, Resource block_factor <= 4,096.
- io_stream Conv1D, line-buffer implementation (nnet_conv1d_stream.h `conv_1d_buffer_cl`,
  nnet_conv_stream.h `compute_output_buffer_1d`): one input pixel per `PIPELINE
  II=reuse_factor`; each output pixel is one dense kernel of filt_width * n_chan inputs and
  n_filt outputs.
- io_stream Dense (nnet_dense_stream.h): the input beats are read (II=1), one dense kernel
  runs (II=rf), the output beats are written.
- Pooling, activations, batch normalisation (nnet_pooling_stream.h, nnet_activation_stream.h,
  nnet_batchnorm_stream.h): one pixel per cycle (`PIPELINE`, inner loops unrolled).
- Transpose (nnet_transpose_stream.h): the whole tensor in registers (`ARRAY_PARTITION
  complete`), read, then written.
- Softmax, stable (nnet_activation_stream.h `softmax_stable`): an exp and an inverse table.

Logic around a kernel's products (LUT, FF and latency of the Resource strategy) is not a rule
hls4ml states: it is calibrated on published Vivado HLS reports of hls4ml kernels (the table in
tests/data/hls4ml_reports.json; benchmarks/cost_vs_reports.py prints the model's error on it):
- the input array is registered and selected (about 1.5 LUT and 2 FF per input bit) under a
  fixed cost of control and pipeline stages (KERNEL_BASE_LUT, KERNEL_BASE_FF);
- with rf < n_in each multiplier reads a different input every ReuseLoop iteration through an
  index HLS computes at run time (`in_index += rf; if (in_index >= n_in) ...` in
  nnet_dense_resource.h), which costs about RUNTIME_SELECT_LUT LUTs per multiplier in every
  report; with rf >= n_in all multipliers read the same input and the cost per multiplier is
  its accumulator's adder (about 2 LUT per accumulator bit);
- a Resource kernel's latency is rf + 2 cycles (ReuseLoop at II=1, then the result cast).
The Latency strategy has no published report in the table: its adder tree (a LUT per
accumulator bit per product) and, with rf > 1, the operand multiplexers of each shared
multiplier (a LUT per operand bit per 4 products it serves) follow from its code, unchecked.

Mapping to the fabric (estimates): a product goes to DSPs when both operands are at least
LUT_MULT_BELOW bits wide, as ceil(a/A) * ceil(b/B) DSP slices of A x B (DSP48E1 25x18 on
7-series, DSP48E2 27x18 on UltraScale+), else to about a*b/2 LUTs; a memory of depth d and
width w takes ceil(w / port width) BRAM18s for the widest 18 Kb aspect ratio that holds d
words (512x36 ... 16Kx1); a FIFO up to 32 words deep is shift-register LUTs (SRL32, a
LUT per bit), deeper BRAM18s. The design's interval is its slowest layer's (io_stream dataflow);
its latency is that plus every layer's fill.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

from ..ir.design import Design, Layer
from .boards import family_of_part

COST_MODEL_VERSION = 2
UNROLL_LIMIT = 4096
LUT_MULT_BELOW = 10
DSP_SHAPE = {"7series": (25, 18), "ultrascale+": (27, 18)}
CONTROL_LUT, CONTROL_FF = 60, 60          # a layer's loop counters and handshakes (estimate)
KERNEL_BASE_LUT, KERNEL_BASE_FF = 1000, 500  # a kernel's control, casts and pipeline (calibrated, see above)
RUNTIME_SELECT_LUT = 280                   # per multiplier when rf < n_in (calibrated, see above)
SMALL_ROM_BITS = 1024                      # weight memories this small are LUT ROM, not BRAM (reports)
KERNEL_KINDS = ("Dense", "Conv1D")


def valid_reuse_factors(n_in: int, n_out: int) -> list[int]:
    """hls4ml 1.3's valid reuse factors of an n_in x n_out kernel (fpga_backend.py)."""
    out = []
    for rf in range(1, n_in * n_out + 1):
        if (n_in * n_out) % rf:
            continue
        multiplier_limit = math.ceil(n_in * n_out / min(n_in, rf))
        if not (multiplier_limit % n_out == 0 or rf >= n_in):
            continue
        if rf > n_in and rf % n_in:
            continue
        out.append(rf)
    return out


def dsp_per_product(a_bits: int, b_bits: int, family: str = "7series") -> int:
    """DSP slices one a x b product takes; 0 when it is built of LUTs."""
    if min(a_bits, b_bits) < LUT_MULT_BELOW:
        return 0
    big, small = DSP_SHAPE[family]
    return min(math.ceil(a_bits / big) * math.ceil(b_bits / small), math.ceil(a_bits / small) * math.ceil(b_bits / big))


def lut_per_product(a_bits: int, b_bits: int) -> int:
    """LUTs of an a x b product built in the fabric (estimate: an array of about a*b/2 LUT6)."""
    return math.ceil(a_bits * b_bits / 2)


def bram18_for(depth: int, width: int) -> int:
    """BRAM18 blocks for a memory of `depth` words of `width` bits."""
    if depth <= 0 or width <= 0:
        return 0
    for words, port in ((512, 36), (1024, 18), (2048, 9), (4096, 4), (8192, 2), (16384, 1)):
        if depth <= words:
            return math.ceil(width / port)
    return math.ceil(depth / 16384) * width


def fifo_cost(width: int, depth: int) -> dict[str, int]:
    """Resources of a FIFO `width` bits wide and `depth` words deep (estimate): Vivado HLS
    builds shallow streams as shift registers (its `fifo_w*_d*_S` modules), which map to
    one SRL32 LUT per bit up to 32 words; deeper ones to block RAM."""
    if depth <= 32:
        return {"bram18": 0, "lut": width + 16, "ff": 24}
    return {"bram18": bram18_for(depth, width), "lut": 40, "ff": 60}


@dataclass
class LayerCost:
    """One layer's estimated cost.

    Attributes:
        name, kind: hls4ml's layer name and class.
        strategy, reuse_factor: the kernel's (None for layers without a kernel).
        multiplications: products of one kernel call (n_in * n_out; 0 without a kernel).
        unrolled: products one loop unrolls (checked against UNROLL_LIMIT).
        multipliers: parallel multipliers after reuse.
        dsp, bram18, lut, ff: resources, the layer's output FIFO included.
        ii: cycles between two kernel calls (pixels).
        cycles: cycles the layer takes per inference (its dataflow interval).
        latency: cycles from its first input to its first output (its fill).
    """

    name: str
    kind: str
    strategy: str | None = None
    reuse_factor: int | None = None
    multiplications: int = 0
    unrolled: int = 0
    multipliers: int = 0
    dsp: int = 0
    bram18: int = 0
    lut: int = 0
    ff: int = 0
    ii: int = 1
    cycles: int = 0
    latency: int = 0

    def add(self, **res: int) -> None:
        """Add resources (dsp=, bram18=, lut=, ff=) to the layer's."""
        for key, value in res.items():
            setattr(self, key, getattr(self, key) + value)

    def to_dict(self) -> dict:
        """The layer as `edge-asr cost --json` prints it."""
        return asdict(self)


def _pixels(shape: list[int]) -> int:
    return math.prod(shape[:-1]) if len(shape) > 1 else 1


def kernel_shape(layer: Layer) -> tuple[int, int, int]:
    """(n_in, n_out, calls per inference) of a Dense or Conv1D layer's dense kernel."""
    a = layer.attributes
    if layer.class_name == "Conv1D":
        return a["filt_width"] * a["n_chan"], a["n_filt"], a["in_width"] + a.get("pad_left", 0) + a.get("pad_right", 0)
    return a["n_in"], a["n_out"], 1


def unrolled_products(strategy: str, n_in: int, n_out: int, rf: int) -> int:
    """Products one loop unrolls: all n_in * n_out in the Latency strategy, a block of
    ceil(n_in * n_out / rf) in the Resource strategy (checked against UNROLL_LIMIT)."""
    return n_in * n_out if strategy == "latency" else math.ceil(n_in * n_out / rf)


def kernel_cost(cost: LayerCost, n_in: int, n_out: int, in_bits: int, w_bits: int, acc_bits: int,
                strategy: str, rf: int, family: str) -> None:
    """Add a dense kernel's multipliers, weight memory, selection logic, adders and registers to `cost`."""
    products = n_in * n_out
    cost.strategy, cost.reuse_factor, cost.multiplications = strategy, rf, products
    cost.multipliers = math.ceil(products / rf)
    cost.unrolled = unrolled_products(strategy, n_in, n_out, rf)
    per_dsp = dsp_per_product(in_bits, w_bits, family)
    if per_dsp:
        cost.add(dsp=cost.multipliers * per_dsp)
    else:  # fabric products, each with a pipeline register
        cost.add(lut=cost.multipliers * lut_per_product(in_bits, w_bits), ff=cost.multipliers * acc_bits)
    # the input array, registered and selected; the accumulators and the output
    cost.add(lut=KERNEL_BASE_LUT + math.ceil(1.5 * n_in * in_bits),
             ff=KERNEL_BASE_FF + 2 * n_in * in_bits + n_out * acc_bits)
    if strategy == "resource":
        per_multiplier = RUNTIME_SELECT_LUT if rf < n_in else 2 * acc_bits
        cost.add(lut=cost.multipliers * per_multiplier, ff=cost.multipliers * (acc_bits + 10))
        if rf > 1:
            rom_bits = rf * cost.multipliers * w_bits
            if rom_bits <= SMALL_ROM_BITS:
                cost.add(lut=math.ceil(rom_bits / 64))  # LUT ROM, 64 bits per LUT6
            else:
                cost.add(bram18=bram18_for(rf, cost.multipliers * w_bits))
    else:  # the adder tree over all products; with rf > 1 each shared multiplier's operand multiplexers
        cost.add(lut=products * acc_bits, ff=products * acc_bits // 2)
        if rf > 1:
            cost.add(lut=cost.multipliers * (in_bits + w_bits) * math.ceil(rf / 4))
    cost.ii = rf


def kernel_depth(strategy: str, n_in: int, rf: int) -> int:
    """Cycles of one kernel call (estimate): the Resource strategy's ReuseLoop and its result
    cast (rf + 2, as every report in the table shows); the Latency strategy's schedule over rf
    cycles, its adder tree and casts."""
    if strategy == "resource":
        return rf + 2
    return rf + math.ceil(math.log2(max(2, n_in))) + 3


def layer_cost(layer: Layer, in_type_bits: int, family: str, choice: tuple[str, int] | None = None,
               fifo_depth: int | None = None, last: bool = False) -> LayerCost:
    """The estimated cost of one layer, its output FIFO included (none for the last layer).

    `choice` (strategy, reuse factor) replaces the layer's own for a Dense or Conv1D layer.
    """
    cost = LayerCost(layer.name, layer.class_name)
    out_bits = layer.output_type.width if layer.output_type else 32
    out_pack = layer.output_shape[-1] if layer.output_shape else 1
    out_pixels = _pixels(layer.output_shape)
    kind = layer.class_name
    if kind in KERNEL_KINDS:
        strategy, rf = choice or (layer.attributes.get("strategy", "latency").lower(),
                                  int(layer.attributes.get("reuse_factor", 1)))
        n_in, n_out, calls = kernel_shape(layer)
        w = layer.weights.get("weight")
        w_bits = w.type.width if w and w.type else 16
        acc = layer.types.get("accum_t")
        kernel_cost(cost, n_in, n_out, in_type_bits, w_bits, acc.width if acc else 32, strategy, rf, family)
        depth = kernel_depth(strategy, n_in, rf)
        if kind == "Conv1D":
            cost.cycles = calls * rf
            cost.latency = layer.attributes["filt_width"] * rf + depth
        else:
            cost.cycles = 1 + depth + 1
            cost.latency = cost.cycles
    elif kind in ("Input", "InputLayer", "Reshape"):
        cost.cycles, cost.latency = 0, 0
    elif kind == "Transpose":
        n = math.prod(layer.output_shape)
        cost.add(ff=n * out_bits, lut=CONTROL_LUT + out_pack * out_bits // 2)
        cost.cycles = _pixels(list(reversed(layer.output_shape))) + out_pixels  # read all beats, then write
        cost.latency = cost.cycles
    elif kind == "Softmax":
        n = layer.attributes.get("n_in", out_pack)
        for key in ("exp_table_t", "inv_table_t"):
            t = layer.types.get(key)
            size = int(layer.attributes.get(key.replace("_t", "_size"), layer.attributes.get("table_size", 1024)))
            cost.add(bram18=bram18_for(size, t.width if t else 18))
        per_dsp = dsp_per_product(18, 18, family)
        cost.add(dsp=n * per_dsp, lut=n * out_bits * 2 + CONTROL_LUT, ff=n * out_bits * 2 + CONTROL_FF)
        cost.cycles = _pixels(layer.output_shape) + math.ceil(math.log2(max(2, n))) + 8
        cost.latency = cost.cycles
    else:  # pixel-per-cycle layers: activations, pooling, normalisation, padding, clones, merges
        n = out_pack
        if kind in ("Activation", "ReLU") and layer.attributes.get("activation", "").lower() in ("sigmoid", "tanh"):
            t = layer.types.get("table_t")
            cost.add(bram18=bram18_for(int(layer.attributes.get("table_size", 1024)), t.width if t else 18))
        s = layer.weights.get("scale")
        if kind in ("ApplyAlpha", "BatchNormalization") and s is not None and not _powers_of_two(s.codes):
            # a scale that is a power of two everywhere (a bias-only layer's 1) is a shift, not a product
            per_dsp = dsp_per_product(in_type_bits, s.type.width if s.type else 16, family)
            cost.add(dsp=n * per_dsp, lut=0 if per_dsp else n * lut_per_product(in_type_bits, s.type.width))
        if kind == "Pooling1D":
            cost.add(ff=layer.attributes.get("pool_width", 2) * n * out_bits)
        cost.add(lut=n * out_bits + CONTROL_LUT // 2, ff=n * out_bits + CONTROL_FF // 2)
        in_pixels = layer.attributes.get("n_in") if kind == "Pooling1D" else out_pixels
        cost.cycles = max(int(in_pixels or 1), out_pixels)
        cost.latency = (layer.attributes.get("pool_width", 1) if kind == "Pooling1D" else 1) + 2
    if not last and kind not in ("Input", "InputLayer"):
        depth = fifo_depth if fifo_depth is not None else out_pixels
        cost.add(**fifo_cost(out_pack * out_bits, depth))
    return cost


def _powers_of_two(codes) -> bool:
    if codes is None:
        return False
    c = [abs(int(v)) for v in codes.reshape(-1)]
    return all(v == 0 or v & (v - 1) == 0 for v in c)


def input_bits(design: Design) -> dict[str, int]:
    """Each layer's input width in bits (its first input tensor's type)."""
    by_tensor = {}
    for layer in design.layers:
        for t in layer.outputs:
            by_tensor[t] = layer.output_type.width if layer.output_type else 32
    first = design.input_type.width
    return {layer.name: by_tensor.get(layer.inputs[0], first) if layer.inputs else first for layer in design.layers}


def design_costs(design: Design, choices: dict[str, tuple[str, int]] | None = None,
                 fifo_depths: dict[str, int] | None = None, family: str | None = None) -> list[LayerCost]:
    """Every layer's estimated cost; `choices` and `fifo_depths` (by layer name) replace the
    design's own, for trying configurations before converting them."""
    family = family or family_of_part(design.part)
    bits = input_bits(design)
    depths = fifo_depths if fifo_depths is not None else design.data.get("fifo_depths", {})
    last = design.layers[-1].name
    return [layer_cost(layer, bits[layer.name], family, (choices or {}).get(layer.name), depths.get(layer.name),
                       last=layer.name == last) for layer in design.layers]


def summarize(costs: list[LayerCost], clock_ns: float, available: dict[str, int] | None, budget: float) -> dict:
    """Totals, interval and latency of a list of layer costs, against a board's resources."""
    totals = {k: sum(getattr(c, k) for c in costs) for k in ("dsp", "bram18", "lut", "ff")}
    interval = max((c.cycles for c in costs), default=0)
    latency = interval + sum(c.latency for c in costs)
    over = {k: v / (budget * available[k]) for k, v in totals.items() if available and available[k]}
    return {
        "estimate": "estimated from hls4ml 1.3's rules, not synthesized",
        "cost_model_version": COST_MODEL_VERSION,
        "budget": budget, "totals": totals, "available": available,
        "fits": bool(available) and all(v <= 1.0 for v in over.values())
        and all(c.unrolled <= UNROLL_LIMIT for c in costs),
        "unroll_limit": UNROLL_LIMIT,
        "interval_cycles": interval, "latency_cycles": latency, "clock_ns": clock_ns,
        "interval_us": round(interval * clock_ns / 1000, 3), "latency_us": round(latency * clock_ns / 1000, 3),
        "layers": [c.to_dict() for c in costs],
    }


def cost_record(design: Design, budget: float | None = None) -> dict:
    """The design's cost as `edge-asr cost --json` prints it and design.json records it:
    summarize's record against the design's board (none: no budget), with `board`."""
    from .boards import BOARDS
    recorded = design.data.get("cost") or {}
    budget = budget if budget is not None else recorded.get("budget", 0.7)
    board = BOARDS.get(design.board) if design.board else None
    record = summarize(design_costs(design), design.clock_period_ns, board.available() if board else None, budget)
    record["board"] = design.board
    return record


def check_recorded_cost(design: Design) -> None:
    """Raise DesignError when design.json's recorded cost is not what its layers cost now
    (a layer's strategy, reuse factor or FIFO depth edited, or another cost model)."""
    from ..errors import DesignError
    recorded = design.data.get("cost")
    if recorded is None:
        return  # written before the cost model: nothing recorded to disagree with
    now = cost_record(design, recorded.get("budget"))
    if recorded.get("cost_model_version") != COST_MODEL_VERSION:
        raise DesignError(f"{design.path}: cost recorded by cost model {recorded.get('cost_model_version')}, this is "
                          f"{COST_MODEL_VERSION}; convert the model again")
    for key in ("totals", "interval_cycles", "latency_cycles", "fits", "layers"):
        if recorded.get(key) != now[key]:
            raise DesignError(f"{design.path}: the recorded cost's {key} no longer matches its layers (an edited "
                              "design.json?); convert the model again")


def format_cost(record: dict) -> str:
    """The cost record as a table for a terminal."""
    head = (f"{'layer':<16} {'strategy':<9} {'reuse':>6} {'mults':>6} {'dsp':>5} {'bram18':>6} {'lut':>7} "
            f"{'ff':>7} {'ii':>5} {'cycles':>7}")
    lines = [f"{record['estimate']}; board {record['board'] or 'none'}", head]
    for c in record["layers"]:
        lines.append(f"{c['name']:<16} {c['strategy'] or '-':<9} {c['reuse_factor'] or '-':>6} {c['multipliers']:>6} "
                     f"{c['dsp']:>5} {c['bram18']:>6} {c['lut']:>7} {c['ff']:>7} {c['ii']:>5} {c['cycles']:>7}")
    t, a = record["totals"], record["available"]
    lines.append(f"{'total':<16} {'':<9} {'':>6} {'':>6} {t['dsp']:>5} {t['bram18']:>6} {t['lut']:>7} {t['ff']:>7}")
    if a:
        b = record["budget"]
        lines.append(f"{'budget ' + format(b, '.0%'):<16} {'':<9} {'':>6} {'':>6} {int(b * a['dsp']):>5} "
                     f"{int(b * a['bram18']):>6} {int(b * a['lut']):>7} {int(b * a['ff']):>7}")
        lines.append(f"fits {record['board']}: {'yes' if record['fits'] else 'NO'}")
    lines.append(f"interval {record['interval_cycles']} cycles ({record['interval_us']} us), latency "
                 f"{record['latency_cycles']} cycles ({record['latency_us']} us) at {1000 / record['clock_ns']:.0f} MHz")
    return "\n".join(lines)
