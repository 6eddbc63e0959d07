"""The clips of a training run as tensors: the manifests of its data sets read and checked
(held-out speakers stay held out, every node has the same data), features computed on
every rank's share and swapped, the normalisation statistics, and each clip's weight."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from ..data import SILENCE
from ..data.loading import feature_matrix, label_indices
from ..data.manifest import Row, read_manifest
from ..errors import InputError
from ..frontend.features import FeatureConfig
from . import checkpoint
from .batches import FrontEnd, log_mel_config, noise_rows
from .distributed import Group
from .rundir import Init
from .spec import TrainConfig, TrainSpec


@dataclass
class TrainData:
    """The clips of a run as tensors: training clips as log-mel (augmentation works there),
    validation clips through the whole front end, and what the batches need."""
    train_sets: list[tuple[Path, list[Row]]]
    train_rows: list[Row]
    valid_rows: list[Row]
    xtr: torch.Tensor
    ytr: torch.Tensor
    xva: torch.Tensor
    yva: torch.Tensor
    feature: FeatureConfig  # with the normalisation statistics
    front: FrontEnd  # log-mel -> the model's input
    noise_bank: torch.Tensor | None  # mel power of the clips --noise-mix draws from
    fingerprint: str
    set_weights: np.ndarray  # each training clip's --data-weight (its data set's)
    extra_valid: list[tuple[str, torch.Tensor, torch.Tensor]]  # (name, inputs, labels) of each --extra-valid set


UNNAMED_SPEAKERS = {"noise", "unknown"}  # clips without a voice to keep apart (unnamed corpora)


def _voices(rows: list[Row]) -> set[str]:
    """The speakers of the clips that hold a voice (noise clips hold none)."""
    return {r.speaker for r in rows if r.label != SILENCE} - UNNAMED_SPEAKERS


def _check_held_out(spec: TrainSpec, train_sets: list, valid_rows: list[Row], extra_valid: list) -> None:
    """Held-out speakers stay held out: an extra set must not train on them, nor on the
    speakers of an --extra-valid set."""
    held_out = _voices(valid_rows + read_manifest(spec.data_dir, "test"))
    for d, rows in train_sets[1:]:
        leaked = sorted(_voices(rows) & held_out)
        if leaked:
            raise InputError(f"{d}: its train split holds {leaked[0]}, a held-out speaker of {spec.data_dir}; "
                             "extra training data must come from the same voice split")
    trained = set().union(*(_voices(rows) for _, rows in train_sets))
    for d, rows in extra_valid:
        leaked = sorted(_voices(rows) & trained)
        if leaked:
            raise InputError(f"--extra-valid {d}: its valid split holds {leaked[0]}, a speaker the run trains on; "
                             "validate on speakers no training split holds")


def front_end(spec: TrainSpec, init: Init | None) -> FeatureConfig:
    """The run's front end: --init's, statistics included (its weights expect those inputs),
    or the flags' (statistics to come from the training clips)."""
    return FeatureConfig.from_dict(init.meta["feature"]) if init else (spec.feature or FeatureConfig())


def prepare_data(spec: TrainSpec, cfg: TrainConfig, fcfg: FeatureConfig, init: Init | None, labels: list[str],
                 group: Group) -> TrainData:
    """Read the manifests, check the voice split and that every node has the same data, and
    compute the features (each rank every world-th clip; the ranks then swap them) and, for
    a run not started from --init, the normalisation statistics of the training clips."""
    progress = spec.progress and group.is_main
    train_sets = [(d, read_manifest(d, "train")) for d in spec.data_dirs]
    train_rows = [r for _, rows in train_sets for r in rows]
    valid_rows = read_manifest(spec.data_dir, "valid")
    extra_rows = [(d, read_manifest(d, "valid")) for d in spec.extra_valid]
    _check_held_out(spec, train_sets, valid_rows, extra_rows)
    fingerprint = checkpoint.data_fingerprint([*spec.data_dirs, *spec.extra_valid])
    if len(set(group.all_gather_object(fingerprint))) > 1:
        raise InputError(f"{spec.data_dir}: the data differ between the nodes of the run; every node needs the "
                         "same data directories (a copy of each, or a shared file system)")
    noise_idx = noise_rows(train_rows) if cfg.noise_mix > 0 else None
    # Features are held as log-mel; augmentation works there (a mel axis to warp and mask),
    # then FrontEnd applies the rest of the front end: DCT, mean normalisation, scaling.
    mel = log_mel_config(fcfg)

    def features(d: Path, rows: list, desc: str) -> np.ndarray:
        return group.gather_rows(feature_matrix(d, rows[group.rank::group.world], mel, progress, desc), len(rows))

    xtr = torch.from_numpy(np.concatenate([features(d, rows, "features (train)") for d, rows in train_sets]))
    xva = torch.from_numpy(features(spec.data_dir, valid_rows, "features (valid)"))
    xev = [(d, torch.from_numpy(features(d, rows, f"features (valid: {d.name})")), rows) for d, rows in extra_rows]
    if init is None:
        fcfg = with_statistics(fcfg, xtr)
    front = FrontEnd(fcfg)
    set_weights = np.concatenate([np.full(len(rows), spec.weight_of(d)) for d, rows in train_sets])
    return TrainData(train_sets=train_sets, train_rows=train_rows, valid_rows=valid_rows, xtr=xtr,
                     ytr=torch.from_numpy(label_indices(train_rows, labels)), xva=front(xva),
                     yva=torch.from_numpy(label_indices(valid_rows, labels)), feature=fcfg, front=front,
                     noise_bank=torch.exp(xtr[noise_idx]) if noise_idx else None, fingerprint=fingerprint,
                     set_weights=set_weights,
                     extra_valid=[(d.name, front(x), torch.from_numpy(label_indices(rows, labels)))
                                  for d, x, rows in xev])


def with_statistics(fcfg: FeatureConfig, xtr: torch.Tensor) -> FeatureConfig:
    """fcfg with the per-feature mean and spread of the training clips (log-mel `xtr`) after
    the rest of the front end: saved with the model."""
    plain = FrontEnd(FeatureConfig(**{**fcfg.to_dict(), "mean": [], "std": []}))(xtr)
    return FeatureConfig(**{**fcfg.to_dict(), "mean": plain.mean(dim=(0, 2)).double().numpy().round(6).tolist(),
                            "std": (plain.std(dim=(0, 2)).double().numpy() + 1e-3).round(6).tolist()})
