"""What every verb's arguments share: ranged number types and the options of a verb that
writes a folder."""

from __future__ import annotations

import argparse
import math


def ranged(kind, lo=None, hi=None, above: bool = False):
    """An argparse type: an int or a finite float, at least `lo` (above it with `above`) and at
    most `hi`; anything else is refused at parse time, in one line."""
    def parse(text: str):
        try:
            value = kind(text)
        except ValueError as exc:
            raise argparse.ArgumentTypeError(f"{text!r} is not {'an integer' if kind is int else 'a number'}") from exc
        if kind is float and not math.isfinite(value):
            raise argparse.ArgumentTypeError(f"{text} is not a finite number")
        if lo is not None and (value <= lo if above else value < lo):
            raise argparse.ArgumentTypeError(f"{text} must be {'above' if above else 'at least'} {lo}"
                                             + (f" and at most {hi}" if hi is not None else ""))
        if hi is not None and value > hi:
            raise argparse.ArgumentTypeError(f"{text} must be at most {hi}")
        return value
    parse.__name__ = kind.__name__
    return parse


COUNT = ranged(int, 1)          # a count of things: 1 or more
SHARE = ranged(float, 0, 1)     # a share: 0 to 1


def writes(parser: argparse.ArgumentParser, what: str, quiet: bool = False) -> None:
    """The options of a verb that writes a folder: --out, --force (and --quiet for long work)."""
    parser.add_argument("--out", required=True, help=what)
    parser.add_argument("--force", action="store_true", help="replace an existing --out")
    if quiet:
        parser.add_argument("--quiet", action="store_true", help="no progress bars")
