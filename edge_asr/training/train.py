"""`edge-asr train`: CPU training with validation each epoch, early stopping and seed control,
in one process or data-parallel over several (torch.distributed; see distributed.py).

A run directory holds `best.pt` (a state dict, loaded with weights_only=True) and
`train.json` (net, its arguments, labels, feature configuration with the normalisation
statistics, data summary and the per-epoch history). `edge-asr export` reads both. While
it trains, the run lives in OUT.incomplete with a per-epoch checkpoint (checkpoint.py).
This module places the run (this process, workers it launches, or one rank under
torchrun); loop.py is the training itself, spec.py what it is asked to do.
"""

from __future__ import annotations

from pathlib import Path

from ..data.manifest import read_manifest
from ..errors import EdgeAsrError, InputError
from ..frontend.features import FeatureConfig
from . import checkpoint, distributed
from .distributed import Launch
from .loop import run_training
from .spec import TrainConfig, TrainSpec

__all__ = ["TrainConfig", "TrainSpec", "train"]


def train(data_dir: str | Path, out: str | Path, cfg: TrainConfig, feature_cfg: FeatureConfig | None = None,
          force: bool = False, progress: bool = True, log=print, extra_train: list[str | Path] = (),
          resume: bool = False, where: Launch | None = None, debug: bool = False,
          extra_valid: list[str | Path] = ()) -> Path:
    """Train on data_dir's train split, plus the train splits of `extra_train` (other data
    sets, e.g. `data synth` with other seeds or `data import`ed corpora, drawn as often as
    cfg.data_weights says); validation uses data_dir's valid split, and the valid splits of
    `extra_valid` (real speakers), whose mean accuracy with data_dir's own then chooses the
    epoch. In this
    process, or on `where`'s worker processes (data-parallel); `resume` continues the
    stopped run at `out` from its last checkpoint."""
    data_dir, out = Path(data_dir), Path(out)
    where = where or Launch()
    cfg.check(where)
    spec = TrainSpec(data_dir=data_dir, extra_train=[Path(d) for d in extra_train], cfg=cfg, feature=feature_cfg,
                     partial=checkpoint.incomplete_dir(out), resume=resume, progress=progress,
                     extra_valid=[Path(d) for d in extra_valid])
    for d in [*spec.data_dirs, *spec.extra_valid]:
        read_manifest(d)  # a missing or malformed data set fails here, before a folder is made
    spec.check_weights()
    group = None
    if distributed.under_torchrun():  # this process is one rank of a run torchrun started
        if where.distributed:
            raise InputError("--nproc/--nnodes: under torchrun its own options place the workers; leave them out")
        group = distributed.join_group()
    writes = group.is_main if group else where.node_rank == 0  # global rank 0's folder holds the run
    partial = checkpoint.prepare(out, force, resume) if writes else None
    if resume and writes:  # refuse another recipe or other data here, before any worker starts
        checkpoint.load(partial, spec.recipe(), checkpoint.data_fingerprint([*spec.data_dirs, *spec.extra_valid]))
    try:
        if group is not None:
            run_training(spec, group)
            distributed.leave_group()
        elif where.distributed:
            distributed.launch(run_training, spec, where, log, debug)
        else:
            run_training(spec, distributed.Group(), log)
    except BaseException as exc:
        kept = checkpoint.abandon(partial) if writes else ""
        if kept and isinstance(exc, EdgeAsrError):
            raise type(exc)(f"{exc}; {kept}") from exc
        if kept:
            log(kept)
        raise
    if not writes:
        if group is None:
            log(f"node {where.node_rank}: done; node 0 saves the run")
        return out
    checkpoint.finish(partial, out)
    log(f"run saved to {out}")
    return out
