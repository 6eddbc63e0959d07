"""Write a directory atomically: build it in a temporary sibling, rename it into place.

An interrupted or failed run leaves nothing behind; the previous output (replaced only
with --force, checked by the caller before any work) stays intact until the rename.
"""

from __future__ import annotations

import os
import secrets
import shutil
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Iterator

from .errors import OutputExistsError


def refuse_existing(out: Path, force: bool, flag: str = "--out") -> None:
    """Raise OutputExistsError if `out` exists and `force` is not set; `flag` names the option to change."""
    if out.exists() and not force:
        raise OutputExistsError(f"{out}: exists; choose another {flag} or pass --force to replace it")


def write_atomic(path: Path, write: Callable[[Path], object]) -> Path:
    """Write a file whole or not at all: `write(sibling)` writes a hidden sibling, which is
    renamed over `path` (a failed write removes the sibling and leaves `path` as it was)."""
    path = Path(path)
    partial = path.with_name(f".{path.name}.tmp")
    try:
        write(partial)
        partial.replace(path)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    return path


def write_text_atomic(path: Path, text: str) -> Path:
    """Write a text file whole or not at all (write_atomic)."""
    return write_atomic(path, lambda partial: partial.write_text(text))


def move_into_place(src: Path, out: Path) -> None:
    """Rename the folder `src` to `out`, replacing what is there (a folder, a file or a
    symlink; the caller checked --force)."""
    if out.is_dir() and not out.is_symlink():
        shutil.rmtree(out)
    elif out.exists() or out.is_symlink():
        out.unlink()  # --force onto a file: the folder takes its place
    src.rename(out)


def _make_temporary_dir(out: Path) -> Path:
    """A new hidden sibling of `out` with the mode any folder of the user's gets (0777 less
    the umask, which os.mkdir applies). Not tempfile.mkdtemp, which makes it private (0700):
    reading the umask to widen that would mean setting it, for the whole process and every
    thread in it, for a moment."""
    for _ in range(100):
        tmp = out.parent / f".{out.name}.tmp-{secrets.token_hex(4)}"
        try:
            os.mkdir(tmp, 0o777)
            return tmp
        except FileExistsError:
            continue
    raise FileExistsError(f"{out.parent}: no free name for a temporary folder beside {out.name}")


@contextmanager
def atomic_dir(out: Path) -> Iterator[Path]:
    """A temporary sibling of `out` to write into; renamed to `out` when the block ends
    without an exception (replacing an existing `out`), removed otherwise, on any signal
    that reaches Python (KeyboardInterrupt, and SIGTERM, which the CLI turns into
    `Terminated`).
    """
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = _make_temporary_dir(out)
    try:
        yield tmp
        move_into_place(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


class Terminated(BaseException):
    """SIGTERM (as `timeout` or a cancelled CI job sends it), raised where the program is, so
    that every atomic_dir cleans up as it does for Ctrl-C. A BaseException, so that code
    catching Exception does not take it for an error of its own."""


def raise_on_sigterm() -> None:
    """Make SIGTERM raise Terminated in the main thread (the CLI calls this)."""
    import signal

    def terminated(signum, frame):
        raise Terminated()

    signal.signal(signal.SIGTERM, terminated)


def worker_signals() -> None:
    """For a worker process of a pool (its initializer): signals are the parent's to handle.
    Ctrl-C is ignored and SIGTERM (the pool stopping it) ends it quietly, where the
    inherited handler would raise Terminated and print a traceback over the one line the
    parent prints."""
    import signal
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
