"""A training run's folder while it trains, and its per-epoch checkpoint.

A run trains in `OUT.incomplete/`, renamed to OUT when the last epoch is done. Each epoch
rank 0 writes `checkpoint.pt` there (atomically: a kill mid-write leaves the previous
one): the model, optimizer and schedule, every rank's random state, the early-stopping
counters and history, and the recipe and data it belongs to. A run that fails or is
stopped after its first checkpoint keeps the folder; `train --resume` continues it, on
the same or another number of processes. One that fails before leaves nothing behind.
"""

from __future__ import annotations

import hashlib
import shutil
from dataclasses import dataclass, field
from pathlib import Path

import torch

from ..atomic import move_into_place, refuse_existing, write_atomic
from ..errors import InputError, OutputExistsError

CHECKPOINT = "checkpoint.pt"
FORMAT = 1
# Settings that may change between a run and its resumption: where and how fast it runs.
NOT_RECIPE = ("threads", "profile")


def incomplete_dir(out: Path) -> Path:
    """The folder a run at `out` trains in."""
    return out.with_name(out.name + ".incomplete")


def prepare(out: Path, force: bool, resume: bool) -> Path:
    """The folder to train in, made or found; OutputExistsError / InputError for a run that
    would overwrite without --force or resume what is not there."""
    partial = incomplete_dir(out)
    if resume:
        if not (partial / CHECKPOINT).is_file():
            raise InputError(f"{partial / CHECKPOINT}: no checkpoint to resume from; a run stopped after its "
                             "first epoch keeps one there. Leave out --resume to start a new run")
        if out.exists() and not force:
            raise OutputExistsError(f"{out}: exists; a resumed run would replace it: pass --force or choose "
                                    "another --out")
        return partial
    refuse_existing(out, force)
    if partial.exists():
        if not force:
            raise OutputExistsError(f"{partial}: a stopped run's checkpoint; pass --resume to continue it or "
                                    "--force to start over")
        shutil.rmtree(partial)
    partial.mkdir(parents=True)
    return partial


def finish(partial: Path, out: Path) -> None:
    """Turn a finished run's folder into `out` (replacing it: the caller checked --force)."""
    (partial / CHECKPOINT).unlink(missing_ok=True)
    move_into_place(partial, out)


def abandon(partial: Path) -> str:
    """After a failure: keep `partial` when it holds a checkpoint (saying so), else remove it."""
    path = partial / CHECKPOINT
    if path.is_file():
        epoch = torch.load(path, weights_only=True, map_location="cpu").get("epoch", "?")
        return (f"the checkpoint of epoch {epoch} is kept in {partial}: rerun the same command with --resume "
                "to continue")
    shutil.rmtree(partial, ignore_errors=True)
    return ""


def save(partial: Path, state: dict) -> None:
    """Write `state` as the run's checkpoint, whole or not at all."""
    write_atomic(partial / CHECKPOINT, lambda sibling: torch.save({"format": FORMAT, **state}, sibling))


def load(partial: Path, recipe: dict, fingerprint: str) -> dict:
    """The checkpoint of `partial`, checked: readable, of this format, of the same recipe
    (training settings, the NOT_RECIPE ones aside) and the same data."""
    path = partial / CHECKPOINT
    try:
        state = torch.load(path, weights_only=True, map_location="cpu")
    except Exception as exc:  # torch raises several types for a damaged file
        raise InputError(f"{path}: not a readable checkpoint ({exc}); start again without --resume") from exc
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise InputError(f"{path}: not a checkpoint of this version of edge-asr; start again without --resume")
    saved = state["recipe"]
    for key in sorted(set(saved) | set(recipe)):
        if key not in NOT_RECIPE and saved.get(key) != recipe.get(key):
            raise InputError(f"--resume: {key} is {recipe.get(key)!r}, the checkpoint's run used "
                             f"{saved.get(key)!r}; resume with the same settings")
    if state["fingerprint"] != fingerprint:
        raise InputError(f"--resume: the data (manifests) differ from those the checkpoint in {partial} was "
                         "trained on; resume with the same data directories")
    return state


def data_fingerprint(data_dirs: list[Path]) -> str:
    """sha256 of the data sets' manifests, in order: what a run trains and validates on."""
    h = hashlib.sha256()
    for d in data_dirs:
        h.update((d / "manifest.csv").read_bytes())
    return h.hexdigest()


@dataclass
class Progress:
    """Where a run stands after its last finished epoch (rank 0's view): early stopping's
    counters, the history, and the best weights so far (written as best.pt at the end)."""
    epoch: int = 0
    best: float = -1.0
    best_epoch: int = 0
    stale: int = 0
    history: list = field(default_factory=list)
    best_state: dict | None = None

    def after_epoch(self, epoch: int, accuracy: float, net: torch.nn.Module, patience: int) -> bool:
        """Record an epoch's validation accuracy; True when early stopping ends the run."""
        self.epoch = epoch
        if accuracy > self.best:
            self.best, self.best_epoch, self.stale = accuracy, epoch, 0
            self.best_state = {k: v.detach().clone() for k, v in net.state_dict().items()}
            return False
        self.stale += 1
        return self.stale >= patience

    def to_dict(self) -> dict:
        """The fields a checkpoint keeps."""
        return {"progress": {"epoch": self.epoch, "best": self.best, "best_epoch": self.best_epoch,
                             "stale": self.stale, "history": self.history}, "best_state": self.best_state}

    @classmethod
    def from_checkpoint(cls, state: dict) -> "Progress":
        """The Progress a checkpoint saved."""
        return cls(**state["progress"], best_state=state["best_state"])
