"""The board side, run in its own virtual environment with the real pynq==4.0.0 (numpy<2),
as on a PYNQ image: `make board-setup`, then `.venv-board/bin/python -m pytest tests/board`.

The design is the shipped one as sim/vectors/kws-digits holds it (design.json plus golden
C-sim inputs and outputs), so nothing here needs hls4ml, onnx or torch.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[2]
VECTORS = REPO / "sim" / "vectors" / "kws-digits"
SHIPPED_MODEL = REPO / "models" / "kws-digits"


@pytest.fixture(scope="session")
def design_dir(tmp_path_factory) -> Path:
    from edge_asr.ir.manifest import write_manifest
    d = tmp_path_factory.mktemp("design") / "kws"
    d.mkdir()
    shutil.copyfile(VECTORS / "design.json", d / "design.json")
    shutil.copyfile(SHIPPED_MODEL / "model.json", d / "model.json")
    write_manifest(d, "design")
    return d


@pytest.fixture(scope="session")
def bundle(tmp_path_factory, design_dir) -> Path:
    from edge_asr.deploy.bundle import write_bundle
    return write_bundle(design_dir, tmp_path_factory.mktemp("bundles") / "kws", log=lambda m: None)


@pytest.fixture()
def fresh_bundle(tmp_path, bundle) -> Path:
    """A private copy, for tests that tamper with it."""
    return Path(shutil.copytree(bundle, tmp_path / "bundle"))


@pytest.fixture()
def device():
    from edge_asr.deploy.simdevice import SimulatedDevice
    return SimulatedDevice.activate()


@pytest.fixture()
def overlay(bundle, device):
    from edge_asr.deploy.driver import EdgeAsrOverlay
    ol = EdgeAsrOverlay(bundle)
    yield ol
    ol.close()


@pytest.fixture(scope="session")
def golden():
    """Integer input codes and hls4ml C-sim output codes of the shipped design."""
    return np.load(VECTORS / "inputs.npy").astype(np.int64), np.load(VECTORS / "outputs.npy").astype(np.int64)
