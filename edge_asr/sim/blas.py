"""Holding BLAS to one thread around the small matrix products of a streaming decision.

On matrices this small (one frame's mel filterbank, one window through the simulator)
BLAS's own threads cost more than they give, and far more when other work holds the
cores: the recognize benchmark beside two training runs took 16 ms per hop (p50) with
them and 1.8 ms with one thread. Importable with numpy alone (the board side).
"""

from __future__ import annotations

import contextlib

_CONTROLLER = None


def _controller():
    """threadpoolctl's controller over the libraries loaded by then (numpy's BLAS), made
    once: finding them costs about 0.2 ms a time, a limit after that about 3 us. False
    without threadpoolctl."""
    global _CONTROLLER
    if _CONTROLLER is None:
        try:
            from threadpoolctl import ThreadpoolController
            _CONTROLLER = ThreadpoolController()
        except ImportError:
            _CONTROLLER = False
    return _CONTROLLER


def can_hold_blas() -> bool:
    """Whether one_blas_thread can limit BLAS (threadpoolctl is installed)."""
    return bool(_controller())


def one_blas_thread():
    """A context holding BLAS to one thread (threadpoolctl, when installed; else a no-op)."""
    c = _controller()
    return c.limit(limits=1, user_api="blas") if c else contextlib.nullcontext()
