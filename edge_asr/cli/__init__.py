"""`edge-asr VERB`: one verb per stage, each a thin layer over its module.

Any EdgeAsrError becomes one line on stderr and exit code 2; --debug shows the traceback.
`parser` builds the arguments, `verbs` holds what each verb calls; `python -m
edge_asr.cli` runs it as the console script does.
"""

from __future__ import annotations

import os
import signal
import sys

from ..atomic import Terminated, raise_on_sigterm
from ..errors import EdgeAsrError
from .parser import build_parser

__all__ = ["build_parser", "main"]


def main(argv: list[str] | None = None) -> int:
    """Run `edge-asr` with `argv` (default: sys.argv[1:]); returns the exit code.

    An EdgeAsrError becomes one line on stderr and exit 2 (the traceback with --debug); an
    interrupt exits 130, SIGTERM 143, a closed output pipe 141.
    """
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help and --version exit 0 as argparse does; a bad option returns its code
        if exc.code in (0, None):
            raise
        return int(exc.code)
    if sys.stdout is None:  # started with its output closed (`>&-`): every result would be lost
        print(f"edge-asr {args.verb}: error: standard output is closed; the results would be lost, so nothing "
              "was run; give the command an output", file=sys.stderr)
        return 2
    raise_on_sigterm()
    try:
        return int(args.func(args) or 0)
    except EdgeAsrError as exc:
        if getattr(args, "debug", False):
            raise
        print(f"edge-asr {args.verb}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("edge-asr: interrupted", file=sys.stderr)
        return 130
    except Terminated:
        print("edge-asr: terminated (SIGTERM); nothing was left half-written", file=sys.stderr)
        return 128 + signal.SIGTERM
    except BrokenPipeError:
        # Whoever read our output has gone (`edge-asr eval ... | head`): stop quietly, as a Unix
        # tool killed by SIGPIPE does, and point stdout at /dev/null so the interpreter's last
        # flush at exit does not raise again.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 128 + signal.SIGPIPE
