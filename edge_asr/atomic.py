"""Write a directory atomically: build it in a temporary sibling, rename it into place.

An interrupted or failed run leaves nothing behind; the previous output (replaced only
with --force, checked by the caller before any work) stays intact until the rename.
"""

from __future__ import annotations

import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from .errors import OutputExistsError


def refuse_existing(out: Path, force: bool, flag: str = "--out") -> None:
    """Raise OutputExistsError if `out` exists and `force` is not set; `flag` names the option to change."""
    if out.exists() and not force:
        raise OutputExistsError(f"{out}: exists; choose another {flag} or pass --force to replace it")


@contextmanager
def atomic_dir(out: Path) -> Iterator[Path]:
    """A temporary sibling of `out` to write into; renamed to `out` when the block ends
    without an exception (replacing an existing `out`), removed otherwise, on any signal
    that reaches Python (KeyboardInterrupt included).
    """
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.tmp-", dir=out.parent))
    try:
        yield tmp
        if out.exists():
            shutil.rmtree(out)
        tmp.rename(out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
