"""Past one device: the same engine under `torchrun`, data-parallel through `torch.distributed`.

`python -m engine run RUN_DIR` with `train.devices = N` becomes a launcher: it runs
`python -m torch.distributed.run --standalone --nproc-per-node N -m engine run RUN_DIR`, holds the pid file, and
turns a SIGTERM into a `stop` command for rank 0. Each rank loads the model (rank 0's trainable weights are
broadcast so all start equal), trains on its own shard of the training split (`examples[rank::world]`), and its
step runs through PyTorch's DistributedDataParallel (`data_parallel`): gradients are averaged during the backward
of a step's last micro-batch (`no_sync` on the others), before clipping. Each rank divides its summed loss by the
whole step's target tokens over all ranks (times the number of ranks, which DDP's averaging divides out), so a
token weighs the same as in one process on the same global batch. Rank 0 alone writes events, the summary,
checkpoints and the final weights; checkpoints carry every rank's data position and RNG states, so a resume
continues each shard exactly where it was. NCCL on GPUs, gloo on the CPU.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from types import FrameType
from typing import Any, NoReturn

import torch

from engine.protocol import CHECKPOINT_COMMAND, EVAL_COMMAND, STOP_COMMAND, append_control
from engine.runlock import under_torchrun as under_torchrun  # light: the engine's entry point asks it first
from engine.train.batching import StreamState

#: What rank 0 adds to the control commands when the run folder was deleted, agreed on like them.
FOLDER_GONE = "gone"


class Dist:
    """This process's place in a data-parallel run; with one process every method is a no-op."""

    def __init__(self, rank: int = 0, world: int = 1, local_rank: int = 0, local_world: int | None = None) -> None:
        self.rank, self.world, self.local_rank = rank, world, local_rank
        self.local_world = world if local_world is None else local_world
        self.pids: list[int] = [os.getpid()]
        """The pid of every rank, by rank: a rank on this machine that dies without a word is found by its pid."""

    def on_this_machine(self, rank: int) -> bool:
        """Whether `rank` runs on this machine (torchrun numbers each machine's ranks in one block)."""
        return rank // self.local_world == self.rank // self.local_world

    @property
    def one_machine(self) -> bool:
        """Every rank runs on this machine, so every rank writes into rank 0's run folder (several machines each
        have their own)."""
        return self.local_world == self.world

    @property
    def is_main(self) -> bool:
        """Rank 0: the one that writes."""
        return self.rank == 0

    @property
    def active(self) -> bool:
        return self.world > 1

    def mean(self, value: torch.Tensor) -> torch.Tensor:
        """The mean of a scalar tensor over all ranks."""
        if not self.active:
            return value
        import torch.distributed as dist

        out = value.detach().clone().float()
        dist.all_reduce(out)
        return out / self.world

    def total(self, count: int, device: torch.device) -> int:
        """The sum of an integer over all ranks."""
        if not self.active:
            return count
        import torch.distributed as dist

        out = torch.tensor([count], dtype=torch.long, device=device)
        dist.all_reduce(out)
        return int(out.item())

    def agree(self, commands: set[str], stop: bool, device: torch.device) -> set[str]:
        """The control commands every rank obeys this step: rank 0's (only it reads the control file; `gone`
        when the run folder was deleted), plus a stop if any rank was asked to stop."""
        if not self.active:
            return commands | ({STOP_COMMAND} if stop else set())
        import torch.distributed as dist

        names = (STOP_COMMAND, EVAL_COMMAND, CHECKPOINT_COMMAND, FOLDER_GONE)
        flags = torch.tensor([int(n in commands or (n == STOP_COMMAND and stop)) for n in names], device=device)
        dist.all_reduce(flags, op=dist.ReduceOp.MAX)
        return {n for n, f in zip(names, flags.tolist(), strict=True) if f}

    def share_int(self, value: int, device: torch.device) -> int:
        """Rank 0's value of an integer, everywhere."""
        if not self.active:
            return value
        import torch.distributed as dist

        out = torch.tensor([value], dtype=torch.long, device=device)
        dist.broadcast(out, src=0)
        return int(out.item())

    def gather_rank_states(self, stream: StreamState) -> list[dict[str, Any]] | None:
        """Every rank's data position and RNG states (for a checkpoint: the shards differ, so do the random
        numbers dropout drew); None with one process."""
        if not self.active:
            return None
        import torch.distributed as dist

        from engine.train.checkpoint import rng_state

        gathered: list[Any] = [None] * self.world
        dist.all_gather_object(gathered, {"stream": asdict(stream), "rng": rng_state()})
        return gathered

    def broadcast_trainable(self, model: Any) -> None:
        """Make every rank start from rank 0's trainable weights."""
        if not self.active:
            return
        import torch.distributed as dist

        for param in model.parameters():
            if param.requires_grad:
                dist.broadcast(param.data, src=0)

    def barrier(self) -> None:
        if self.active:
            import torch.distributed as dist

            dist.barrier()


class StepLoss(torch.nn.Module):
    """A training step's forward as one module (the model and its loss, standard or fused), so that
    DistributedDataParallel sees the whole forward even where the fused loss calls the decoder and the output
    layer apart."""

    def __init__(self, model: torch.nn.Module, loss_fn: Callable[[Any, dict[str, torch.Tensor]],
                                                               tuple[torch.Tensor, int]]) -> None:
        super().__init__()
        self.model = model
        self.loss_fn = loss_fn

    def forward(self, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, int]:
        return self.loss_fn(self.model, batch)


def data_parallel(step_loss: StepLoss, device: torch.device) -> torch.nn.Module:
    """`step_loss` under DistributedDataParallel (the ranks already hold the same weights: no initial sync,
    which would also broadcast every frozen weight of an adapter run)."""
    from torch.nn.parallel import DistributedDataParallel

    ids = [device.index] if device.type == "cuda" else None
    return DistributedDataParallel(step_loss, device_ids=ids, init_sync=False)


def init_distributed(device_request: str) -> tuple[Dist, torch.device | None]:
    """Join the process group when under torchrun; returns this rank's `Dist` and device (None: choose as
    usual)."""
    if not under_torchrun():
        return Dist(), None
    import torch.distributed as dist

    rank, world, local = int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"]), int(os.environ["LOCAL_RANK"])
    use_cuda = device_request != "cpu" and torch.cuda.is_available()
    first = int(device_request[5:]) if device_request.startswith("cuda:") else 0  # cuda:N: GPUs N, N+1, ...
    device = torch.device(f"cuda:{first + local}") if use_cuda else torch.device("cpu")
    if use_cuda:
        torch.cuda.set_device(device)
    if not dist.is_initialized():
        dist.init_process_group("nccl" if use_cuda else "gloo")
    place = Dist(rank, world, local, int(os.environ.get("LOCAL_WORLD_SIZE", world)))
    pids: list[Any] = [None] * world
    dist.all_gather_object(pids, os.getpid())
    place.pids = [int(pid) for pid in pids]
    return place, device


def shutdown_distributed(wait_for_peers: bool = False) -> None:
    """Leave the process group (all ranks), if one was joined. `wait_for_peers` (a rank that ended cleanly) first
    waits until every rank is done, rank 0's last writes included, so no rank tears its connections down while
    another still talks on them; a rank that failed leaves at once (torchrun then ends the others)."""
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        if wait_for_peers:
            dist.barrier()
        dist.destroy_process_group()


def end_rank(code: int) -> NoReturn:
    """End a rank's process once it has left the process group: flush what it printed and logged, then exit
    without the interpreter's teardown.

    By then the rank's work is done and written (trackers and files are closed before it leaves), so that
    teardown only frees memory. It also destroys what torch's distributed objects still hold (the process group
    stays alive through the wrapped model) while the interpreter is half gone, and about one rank exit in a few
    hundred aborted there ("terminate called without an active exception", exit code -6 with no Python frame):
    torchrun then reported a rank that had finished cleanly as failed and stopped its peers."""
    import contextlib
    import logging

    logging.shutdown()
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(OSError, ValueError):  # a closed or broken stream: nothing more can reach it
            stream.flush()
    os._exit(code)


@dataclass(frozen=True)
class Layout:
    """The processes of a run: `devices` on each of `nodes` machines, this one numbered `node_rank`, meeting at
    `rdzv_endpoint` (HOST:PORT of node 0) when there are several."""

    devices: int
    nodes: int = 1
    node_rank: int = 0
    rdzv_endpoint: str = ""

    def torchrun_args(self) -> list[str]:
        """torchrun's options: standalone on one machine, else a static rendezvous at node 0 (static, so node 0's
        first process is rank 0, the one that writes: a dynamic rendezvous numbers machines as they arrive)."""
        if self.nodes == 1:
            return ["--standalone", f"--nproc-per-node={self.devices}"]
        host, _, port = self.rdzv_endpoint.rpartition(":")
        return [f"--nnodes={self.nodes}", f"--node-rank={self.node_rank}", f"--nproc-per-node={self.devices}",
                f"--master-addr={host.strip('[]')}", f"--master-port={port}"]


def launch_ranks(run_dir: Path, layout: Layout, engine_args: list[str], keep_fds: tuple[int, ...] = ()) -> int:
    """Run the engine on this machine's ranks under torchrun and wait; a SIGTERM becomes a `stop` for rank 0.

    `keep_fds` (the run folder's lock) stay open in torchrun, so the run stays locked while its ranks train,
    even if this launcher is killed; the ranks themselves take no lock. On several machines each runs this with
    its own run folder (the same spec); the ranks of node 0 write, rank 0 for the whole run."""
    argv = [sys.executable, "-m", "torch.distributed.run", *layout.torchrun_args(),
            "-m", "engine", "run", str(run_dir), *engine_args]

    def on_sigterm(signum: int, frame: FrameType | None) -> None:
        append_control(run_dir, STOP_COMMAND, reason="SIGTERM")

    signal.signal(signal.SIGTERM, on_sigterm)
    env = dict(os.environ, OMP_NUM_THREADS=os.environ.get("OMP_NUM_THREADS", "1"))
    proc = subprocess.Popen(argv, env=env, stdin=subprocess.DEVNULL, pass_fds=keep_fds)
    while True:
        try:
            return proc.wait()
        except InterruptedError:  # a signal arrived mid-wait: keep waiting for the ranks to finish
            continue
