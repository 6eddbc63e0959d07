"""Fitting a design to its board: per kernel layer a strategy and a reuse factor, and the
FIFO depths, so that every resource stays within a budget with the shortest interval.

The search. Each Dense/Conv1D layer has candidates: the Latency strategy at each valid
reuse factor when its n_in * n_out products unroll within UNROLL_LIMIT, and the Resource
strategy at each valid reuse factor whose block of products does. For a target interval
T, every layer takes the candidate of interval <= T that costs least (resources as shares
of the budget, summed); the totals fall as T grows, so the smallest T whose totals fit is
the answer, found by trying T over the candidates' own intervals in order. Layers the user
fixed (--reuse, --config) keep their choice; when that cannot fit, the error says so.

FIFO depths: the streams of a straight chain of layers need no depth beyond a couple of
words to run without deadlock; a slower consumer only holds its producer back, which the
interval already counts. hls4ml sizes every stream to its whole tensor. A stream out of a
fan-out (a Clone) keeps hls4ml's depth: its branches meet again with different delays.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..errors import InputError
from ..ir.design import Design
from .boards import Board
from .cost import (
    KERNEL_KINDS,
    UNROLL_LIMIT,
    design_costs,
    input_bits,
    kernel_shape,
    layer_cost,
    summarize,
    unrolled_products,
    valid_reuse_factors,
)

CHAIN_FIFO_DEPTH = 2


class FitError(InputError):
    """No configuration of the design fits the board's budget; `short` says by how much."""

    short = ""


@dataclass(frozen=True)
class Choice:
    """A kernel layer's strategy ("latency" or "resource") and reuse factor."""

    strategy: str
    reuse_factor: int


def candidates(n_in: int, n_out: int) -> list[Choice]:
    """The configurations hls4ml 1.3 takes and Vivado HLS can unroll, for an n_in x n_out kernel."""
    return [Choice(strategy, rf) for rf in valid_reuse_factors(n_in, n_out) for strategy in ("latency", "resource")
            if unrolled_products(strategy, n_in, n_out, rf) <= UNROLL_LIMIT]


def fifo_depths(design: Design) -> dict[str, int]:
    """Output-stream depth per layer: CHAIN_FIFO_DEPTH on a straight chain, the whole tensor's
    pixels (hls4ml's own) after a fan-out."""
    depths = {}
    for layer in design.layers:
        if layer.class_name in ("Input", "InputLayer"):
            continue
        shape = layer.output_shape
        pixels = 1
        for d in shape[:-1]:
            pixels *= d
        depths[layer.name] = max(1, pixels) if layer.class_name == "Clone" else min(CHAIN_FIFO_DEPTH, max(1, pixels))
    return depths


def _share(cost, available: dict[str, int], budget: float) -> float:
    return sum(getattr(cost, k) / (budget * v) for k, v in available.items() if v)


def fit(design: Design, board: Board, budget: float = 0.7, fixed: dict[str, Choice] | None = None) -> dict:
    """Choose every kernel layer's strategy and reuse factor, and the FIFO depths.

    Args:
        design: a converted design (its own choices are ignored except where `fixed`).
        board: the board whose resources the budget is a share of.
        budget: the share of each resource the design may use (0 < budget <= 1).
        fixed: layer name -> Choice the user set; kept as given.

    Returns:
        dict with `choices` (layer name -> Choice), `fifo_depths`, and `cost` (summarize's
        record of the chosen design).

    Raises:
        FitError: nothing fits; the message names the resource most over and by how much,
            for the smallest design tried.
    """
    if not 0 < budget <= 1:
        raise InputError(f"--budget {budget}: give a share of the board between 0 and 1")
    fixed = fixed or {}
    available = board.available()
    depths = fifo_depths(design)
    family = board.family
    bits = input_bits(design)
    options: dict[str, list[tuple[Choice, object]]] = {}
    for layer in design.layers:
        if layer.class_name not in KERNEL_KINDS:
            continue
        n_in, n_out, _ = kernel_shape(layer)
        if layer.name in fixed:
            c = fixed[layer.name]
            unrolled = unrolled_products(c.strategy, n_in, n_out, c.reuse_factor)
            if unrolled > UNROLL_LIMIT:
                raise FitError(f"layer {layer.name}: {c.strategy} strategy at reuse factor {c.reuse_factor} unrolls "
                               f"{unrolled} products, past Vivado HLS's limit of {UNROLL_LIMIT}; raise its reuse "
                               "factor or leave it to the fit")
        cands = [fixed[layer.name]] if layer.name in fixed else candidates(n_in, n_out)
        if not cands:
            raise FitError(f"layer {layer.name}: no reuse factor lets its {n_in} x {n_out} kernel unroll within "
                           f"{UNROLL_LIMIT} products")
        last = layer is design.layers[-1]  # the last layer's output is the top-level port, not a FIFO
        options[layer.name] = [(c, layer_cost(layer, bits[layer.name], family, (c.strategy, c.reuse_factor),
                                              depths.get(layer.name), last=last)) for c in cands]
    base = design_costs(design, {}, depths, family)
    rest = [c for c in base if c.name not in options]

    def pick(target: int) -> dict[str, Choice] | None:
        chosen = {}
        for name, opts in options.items():
            ok = [(c, x) for c, x in opts if x.cycles <= target]
            if not ok:
                return None
            chosen[name] = min(ok, key=lambda cx: (_share(cx[1], available, budget), cx[1].cycles))[0]
        return chosen

    floor = max((c.cycles for c in rest), default=0)
    targets = sorted({x.cycles for opts in options.values() for _, x in opts} | {floor})
    smallest = None
    for target in targets:
        chosen = pick(target)
        if chosen is None:
            continue
        costs = design_costs(design, {n: (c.strategy, c.reuse_factor) for n, c in chosen.items()}, depths, family)
        record = summarize(costs, design.clock_period_ns, available, budget)
        record.update(board=board.name, fifo_depths=depths)
        if record["fits"]:
            return {"choices": chosen, "fifo_depths": depths, "cost": record}
        smallest = record
    worst = max(smallest["totals"], key=lambda k: smallest["totals"][k] / available[k]) if smallest else None
    if worst is None:
        raise FitError(f"{design.name}: no configuration of its layers can be built (unroll limit {UNROLL_LIMIT})")
    used, room = smallest["totals"][worst], budget * available[worst]
    short = f"the smallest design tried needs {used} {worst.upper()}, {used / room:.1f}x the {room:.0f} allowed"
    error = FitError(f"{design.name} does not fit {board.name} at --budget {budget}: {short}; use a smaller net, "
                     "fewer bits, a bigger board or a larger --budget")
    error.short = short
    raise error
