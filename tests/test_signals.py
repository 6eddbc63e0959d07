"""SIGTERM, as `timeout` or a cancelled CI job sends it, cleans up as Ctrl-C does; outputs get
the user's usual folder mode."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

from edge_asr.atomic import atomic_dir

from .conftest import SHIPPED_MODEL


def test_sigterm_during_convert_leaves_nothing(tmp_path):
    proc = subprocess.Popen([sys.executable, "-m", "edge_asr.cli", "convert", str(SHIPPED_MODEL), "--out",
                             str(tmp_path / "d"), "--calib", str(SHIPPED_MODEL / "calib.npy")],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 60
    while not list(tmp_path.glob(".d.tmp-*")) and time.time() < deadline and proc.poll() is None:
        time.sleep(0.02)
    assert list(tmp_path.glob(".d.tmp-*")), "convert never started writing"
    proc.send_signal(signal.SIGTERM)
    err = proc.communicate(timeout=60)[1]
    assert proc.returncode == 128 + signal.SIGTERM
    assert err.splitlines()[-1].startswith("edge-asr: terminated") and "Traceback" not in err
    assert list(tmp_path.iterdir()) == []


def test_outputs_get_the_users_folder_mode(tmp_path):
    old = os.umask(0o022)
    try:
        with atomic_dir(tmp_path / "out") as tmp:
            (tmp / "f").write_text("x")
    finally:
        os.umask(old)
    assert (tmp_path / "out").stat().st_mode & 0o777 == 0o755


def test_an_atomic_folder_never_sets_the_process_umask(tmp_path, monkeypatch):
    """Setting the umask, even for a moment, changes it for every thread of the process."""
    def refuse(mask):
        raise AssertionError("os.umask called")

    old = os.umask(0o027)
    try:
        monkeypatch.setattr(os, "umask", refuse)
        with atomic_dir(tmp_path / "out") as tmp:
            (tmp / "f").write_text("x")
    finally:
        monkeypatch.undo()
        os.umask(old)
    assert (tmp_path / "out").stat().st_mode & 0o777 == 0o750
