"""The data manifest: one CSV row per clip, and readers that check it."""

from __future__ import annotations

import csv
from dataclasses import asdict, dataclass, fields
from pathlib import Path

from ..errors import InputError

MANIFEST = "manifest.csv"
SPLITS = ("train", "valid", "test")


@dataclass
class Row:
    """One clip of a data set: a row of manifest.csv."""
    path: str          # relative to the data directory
    label: str
    text: str          # what was spoken ("" for silence)
    engine: str
    voice: str
    speaker: str
    augmentation: str  # ';'-joined steps, "clean" when none
    split: str
    seconds: float


def write_manifest(data_dir: Path, rows: list[Row]) -> Path:
    """Write `rows` as data_dir/manifest.csv; returns its path."""
    path = data_dir / MANIFEST
    with path.open("w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=[fl.name for fl in fields(Row)])
        w.writeheader()
        for r in rows:
            w.writerow(asdict(r))
    return path


def read_manifest(data_dir: str | Path, split: str | None = None) -> list[Row]:
    """The rows of data_dir/manifest.csv, those of `split` only when given.

    Raises InputError: no manifest, missing columns, an unknown split or an empty one.
    """
    data_dir = Path(data_dir)
    path = data_dir / MANIFEST
    if not path.is_file():
        raise InputError(f"{data_dir}: no {MANIFEST}; make a data set with `edge-asr data synth --out {data_dir}`")
    with path.open(newline="") as f:
        reader = csv.DictReader(f)
        need = {fl.name for fl in fields(Row)}
        if not need <= set(reader.fieldnames or []):
            raise InputError(f"{path}: missing columns {sorted(need - set(reader.fieldnames or []))}")
        rows = [Row(**{k: r[k] for k in need} | {"seconds": float(r["seconds"])}) for r in reader]
    if split is not None:
        if split not in SPLITS:
            raise InputError(f"unknown split {split}; use one of {', '.join(SPLITS)}")
        rows = [r for r in rows if r.split == split]
        if not rows:
            raise InputError(f"{path}: no rows in split '{split}'")
    return rows
