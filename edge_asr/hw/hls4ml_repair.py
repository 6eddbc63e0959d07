"""What every repair of hls4ml's behaviour records about itself: the hls4ml version it was
written for and checked against, and the upstream issue (or that none was found)."""

from __future__ import annotations

from dataclasses import dataclass

from ..errors import ToolMissingError

HLS4ML_VERSION = "1.3.0"  # the release every repair below was written for and tested on


@dataclass(frozen=True)
class Repair:
    """One repair of hls4ml.

    Attributes:
        name: what it repairs, in a few words.
        kind: how: "parser" (an ONNX handler registered in hls4ml's place), "pass" (an hls4ml
            optimizer pass in a flow of our own) or "writer" (an edit of a file hls4ml wrote).
        hls4ml: the hls4ml version it was written for.
        upstream: hls4ml's issue or pull request for the fault, or why there is none.
    """
    name: str
    kind: str
    hls4ml: str
    upstream: str


class Hls4mlVersionError(ToolMissingError):
    """An installed hls4ml other than the one our repairs were written for."""


def check_version(repairs: list[Repair], installed: str) -> None:
    """Hls4mlVersionError unless every repair was written for the installed hls4ml: another
    release may have fixed the fault, moved the code a repair edits, or broken it anew."""
    stale = [r.name for r in repairs if r.hls4ml != installed]
    if stale:
        raise Hls4mlVersionError(f"hls4ml {installed} is installed; edge-asr's repairs of hls4ml ({', '.join(stale)}) "
                                 f"were written for {HLS4ML_VERSION}: pip install 'hls4ml=={HLS4ML_VERSION}'")
