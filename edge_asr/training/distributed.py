"""Data-parallel training across processes and machines, on torch.distributed.

`launch` starts the workers of this node through torch's elastic launcher (the engine of
`torchrun`): N processes, each joining one process group (gloo on CPUs, nccl where CUDA
is present) and running the function it is given (the training loop) with a `Group`
that names its rank. One
node rendezvouses on localhost as `torchrun --standalone` does; several nodes use the
static rendezvous at --master-addr:--master-port, node 0 hosting it, as `torchrun
--node-rank` does. A worker that dies or raises ends every worker of the run (the
launcher's monitor stops the rest) and becomes one `WorkerFailed` line naming its rank.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import sys
from dataclasses import dataclass
from typing import Callable

import numpy as np
import torch

from ..atomic import Terminated
from ..errors import EdgeAsrError, InputError


class WorkerFailed(EdgeAsrError):
    """A worker process of a data-parallel run that raised, died or was killed."""


@dataclass
class Launch:
    """Where the workers of a run go: processes on this node, nodes, this node's rank and the
    rendezvous address of node 0 (`edge-asr train --nproc --nnodes --node-rank ...`)."""
    nproc: int = 1
    nnodes: int = 1
    node_rank: int = 0
    master_addr: str = "127.0.0.1"
    master_port: int = 29500

    @property
    def distributed(self) -> bool:
        """True when the run needs a process group (more than one process in all)."""
        return self.nproc * self.nnodes > 1

    def check(self) -> None:
        """InputError for counts and ranks that cannot make a run."""
        if self.nproc < 1 or self.nnodes < 1:
            raise InputError(f"--nproc {self.nproc} / --nnodes {self.nnodes}: give at least 1 of each")
        if not 0 <= self.node_rank < self.nnodes:
            raise InputError(f"--node-rank {self.node_rank}: give 0 to {self.nnodes - 1} for --nnodes {self.nnodes}")
        if not 0 < self.master_port < 65536:
            raise InputError(f"--master-port {self.master_port}: give a TCP port, 1-65535")

    def torchrun_command(self) -> str:
        """The torchrun options that start the same workers (logged for people who know torchrun)."""
        if self.nnodes == 1:
            return f"torchrun --standalone --nproc-per-node {self.nproc}"
        return (f"torchrun --nnodes {self.nnodes} --node-rank {self.node_rank} --nproc-per-node {self.nproc} "
                f"--master-addr {self.master_addr} --master-port {self.master_port}")


class Group:
    """The ranks of a run as the training loop sees them; this base class is the one-process
    run (rank 0 of 1), where every collective is the identity."""
    rank = 0
    world = 1

    @property
    def is_main(self) -> bool:
        """True on global rank 0: the rank that validates, checkpoints and writes the run."""
        return self.rank == 0

    def all_gather_object(self, obj) -> list:
        """Every rank's `obj`, in rank order."""
        return [obj]

    def broadcast_object(self, obj):
        """Rank 0's `obj` on every rank."""
        return obj

    def sum(self, values: list[float]) -> list[float]:
        """Element-wise sum over ranks."""
        return list(values)

    def gather_rows(self, part: np.ndarray, n: int) -> np.ndarray:
        """The (n, ...) array whose rows rank r computed as rows r, r + world, ... (`part`)."""
        return part


class TorchGroup(Group):
    """The default process group of torch.distributed (already initialised)."""

    def __init__(self):
        import torch.distributed as dist
        self.dist = dist
        self.rank = dist.get_rank()
        self.world = dist.get_world_size()

    def all_gather_object(self, obj) -> list:
        """Every rank's `obj`, in rank order."""
        out = [None] * self.world
        self.dist.all_gather_object(out, obj)
        return out

    def broadcast_object(self, obj):
        """Rank 0's `obj` on every rank."""
        box = [obj if self.is_main else None]
        self.dist.broadcast_object_list(box, src=0)
        return box[0]

    def sum(self, values: list[float]) -> list[float]:
        """Element-wise sum over ranks."""
        t = torch.tensor(values, dtype=torch.float64)
        self.dist.all_reduce(t)
        return t.tolist()

    def gather_rows(self, part: np.ndarray, n: int) -> np.ndarray:
        """The (n, ...) array whose rows rank r computed as rows r, r + world, ... (`part`)."""
        rows = -(-n // self.world)  # all_gather takes equal shapes: pad every part to the longest
        padded = np.zeros((rows, *part.shape[1:]), part.dtype)
        padded[:len(part)] = part
        parts = [torch.empty_like(torch.from_numpy(padded)) for _ in range(self.world)]
        self.dist.all_gather(parts, torch.from_numpy(padded))
        out = np.empty((n, *part.shape[1:]), part.dtype)
        for r, p in enumerate(parts):
            count = len(range(r, n, self.world))
            out[r::self.world] = p[:count].numpy()
        return out


def _die_with_parent() -> None:
    """Ask Linux to kill this worker when its launcher dies, even by SIGKILL, so that no
    worker is left waiting in a collective for peers that are gone."""
    if not sys.platform.startswith("linux"):
        return
    import ctypes
    pr_set_pdeathsig = 1
    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(pr_set_pdeathsig, signal.SIGKILL)
    except OSError:
        pass  # no libc by that name: the launcher's monitor still stops workers on any failure it sees


def under_torchrun() -> bool:
    """True in a process an elastic agent started as a worker (`torchrun ... -m edge_asr.cli
    train ...` on a cluster): the agent sets these variables, and the process is one rank."""
    return "TORCHELASTIC_RUN_ID" in os.environ and "RANK" in os.environ


def join_group() -> TorchGroup:
    """Join the run's process group as the rank the environment names (gloo: the loop
    trains on CPUs)."""
    import torch.distributed as dist
    _die_with_parent()
    dist.init_process_group("gloo")
    return TorchGroup()


def leave_group() -> None:
    """Leave the process group after a run every rank finished. The barrier keeps a rank
    from tearing gloo down while a peer still talks to it (seen: a worker aborting at exit,
    "terminate called without an active exception"). Not on failure: a rank that raised
    exits, and the launcher stops the others."""
    import torch.distributed as dist
    if dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()


def _worker(work: Callable[[object, Group], None], args) -> None:
    """Entry point of one worker process (started by the elastic launcher): `work(args, group)`."""
    group = join_group()
    work(args, group)
    leave_group()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def launch(work: Callable[[object, Group], None], args, where: Launch, log, debug: bool = False) -> None:
    """Run `work(args, group)` on `where.nproc` workers of this node, each with its Group;
    WorkerFailed naming the first rank that failed. `work` is a module-level function and
    `args` picklable: both travel to spawned processes."""
    from torch.distributed.elastic.multiprocessing.api import SignalException
    from torch.distributed.elastic.multiprocessing.errors import ChildFailedError
    from torch.distributed.launcher.api import LaunchConfig, elastic_launch
    if where.nnodes == 1:
        # torchrun --standalone: a private rendezvous on a free local port
        endpoint, backend, configs = f"127.0.0.1:{_free_port()}", "c10d", {}
    else:
        endpoint, backend, configs = f"{where.master_addr}:{where.master_port}", "static", {"rank": where.node_rank}
    config = LaunchConfig(min_nodes=where.nnodes, max_nodes=where.nnodes, nproc_per_node=where.nproc,
                          run_id="edge-asr-train", rdzv_backend=backend, rdzv_endpoint=endpoint,
                          rdzv_configs=configs, max_restarts=0, monitor_interval=0.1, start_method="spawn")
    world = where.nproc * where.nnodes
    log(f"launching {where.nproc} worker(s) on node {where.node_rank} of {where.nnodes} ({world} in all; "
        f"as `{where.torchrun_command()}` would)")
    os.environ.setdefault("OMP_NUM_THREADS", "1")  # torchrun's default; --threads sets torch's own count
    if not debug:  # the launcher's own log lines would bury the one line that says what happened
        logging.disable(logging.CRITICAL)
        # multiprocessing's resource tracker (a process started with these -W options) frees
        # the semaphores of a killed worker and warns that it did so: quiet that one warning
        if "ignore:resource_tracker:UserWarning" not in sys.warnoptions:
            sys.warnoptions.append("ignore:resource_tracker:UserWarning")
    try:
        elastic_launch(config, _worker)(work, args)
    except ChildFailedError as exc:
        rank, failure = exc.get_first_failure()
        raise WorkerFailed(f"training: rank {rank} (pid {failure.pid}) {_what_happened(failure)}") from exc
    except SignalException as exc:  # the launcher stopped its workers; stop as the CLI does on a signal
        if exc.sigval == signal.SIGINT:
            raise KeyboardInterrupt from exc
        raise Terminated from exc
    finally:
        logging.disable(logging.NOTSET)


def _what_happened(failure) -> str:
    """A ProcessFailure in a few words: the error a worker raised, or how it died."""
    if failure.exitcode < 0:
        return f"was killed by {failure.signal_name()}"
    message = failure.message
    if isinstance(message, dict):
        message = message.get("message", "")
    if message and not str(message).startswith("To enable traceback"):
        # "InputError: text" -> "text": the class name is ours, the text says what to do
        return f"failed: {str(message).split(': ', 1)[-1]}"
    return f"exited with code {failure.exitcode}"


class AllReduceTimer:
    """A DDP communication hook that times each gradient all-reduce (`train --profile`). It
    waits for each one to finish, so the all-reduce no longer overlaps the rest of the
    backward pass: what it measures is the time the exchange costs when nothing hides it."""

    def __init__(self):
        self.seconds = 0.0

    def hook(self, process_group, bucket):
        """DDP's default all-reduce (mean over ranks), timed."""
        import time

        from torch.distributed.algorithms.ddp_comm_hooks.default_hooks import allreduce_hook
        t0 = time.perf_counter()
        future = allreduce_hook(process_group, bucket)
        future.wait()
        self.seconds += time.perf_counter() - t0
        return future
