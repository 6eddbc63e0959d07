"""manifest.json: sha256 and size of every file in a design or bundle directory.

Needs only the standard library: the board-side bundle loader verifies with it too.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from ..errors import EdgeAsrError

MANIFEST = "manifest.json"


class ManifestError(EdgeAsrError):
    """A directory whose files do not match its manifest."""


def sha256_file(path: Path) -> str:
    """sha256 of a file's bytes, read in 1 MiB blocks."""
    h = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _files(root: Path) -> list[Path]:
    """Every file under root except the top-level manifest itself and Python's bytecode
    cache (a bundle's driver/ gets __pycache__/*.pyc the first time it is imported; Python
    recompiles a .pyc whose source differs, and the sources are checked)."""
    return sorted(p for p in root.rglob("*")
                  if p.is_file() and p != root / MANIFEST
                  and not (p.parent.name == "__pycache__" and p.suffix == ".pyc"))


def write_manifest(root: str | Path, kind: str) -> dict:
    """Write root/manifest.json (kind, sha256 and size of every file under root); returns it."""
    root = Path(root)
    files = {p.relative_to(root).as_posix(): {"sha256": sha256_file(p), "size": p.stat().st_size}
             for p in _files(root)}
    manifest = {"schema_version": 1, "kind": kind, "files": files}
    (root / MANIFEST).write_text(json.dumps(manifest, indent=1, sort_keys=True) + "\n")
    return manifest


def manifest_digest(root: str | Path) -> str:
    """sha256 of manifest.json: one key for everything in the directory."""
    return sha256_file(Path(root) / MANIFEST)


def verify_manifest(root: str | Path, kind: str | None = None) -> dict:
    """Raise ManifestError naming the first missing, altered or unexpected file."""
    root = Path(root)
    path = root / MANIFEST
    if not root.is_dir():
        raise ManifestError(f"{root}: not a directory")
    if not path.is_file():
        raise ManifestError(f"{root}: no {MANIFEST}; it was not written by edge-asr or is incomplete")
    try:
        manifest = json.loads(path.read_text())
        files = manifest["files"]
    except (json.JSONDecodeError, KeyError, TypeError) as exc:
        raise ManifestError(f"{path}: not a valid manifest") from exc
    if kind is not None and manifest.get("kind") != kind:
        raise ManifestError(f"{path}: is a {manifest.get('kind')} manifest, expected {kind}")
    present = {p.relative_to(root).as_posix(): p for p in _files(root)}
    for rel, meta in sorted(files.items()):
        p = present.get(rel)
        if p is None:
            raise ManifestError(f"{root / rel}: missing (listed in {MANIFEST}); rebuild the directory")
        if p.stat().st_size != meta["size"] or sha256_file(p) != meta["sha256"]:
            raise ManifestError(f"{root / rel}: altered since it was written (sha256 differs); rebuild the directory")
    extra = sorted(set(present) - set(files))
    if extra:
        raise ManifestError(f"{root / extra[0]}: not listed in {MANIFEST}; remove it or rebuild the directory")
    return manifest
