"""One run on many processes, through torch.distributed: the pieces the engine needs and nothing home-made.

The processes are started by PyTorch's own launcher (`torch.distributed.run`, what `torchrun` is), which
sets RANK, WORLD_SIZE and LOCAL_RANK; gloo joins CPU processes, NCCL GPUs. Each process trains on its
share of the files (DistributedDataParallel averages the gradients), the per-process batch is the run's
batch divided by the number of processes (so the effective batch, the learning-rate schedule and the
number of steps are those of a one-device run), and rank 0 alone writes the run folder.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import torch
from torch import nn
from torch.utils.data import DistributedSampler

from tlstudio.core.data.loaders import EpochSampler

TIMEOUT = timedelta(minutes=30)  # a rank waiting this long for the others gives up with an error


@dataclass(frozen=True)
class World:
    rank: int = 0
    size: int = 1
    local_rank: int = 0

    @property
    def active(self) -> bool:
        return self.size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0


SINGLE = World()


def from_environment() -> World:
    """The process's place in a launch (torchrun's variables), or a one-process world outside one."""
    try:
        size = int(os.environ.get("WORLD_SIZE", "1"))
        rank = int(os.environ.get("RANK", "0"))
        local = int(os.environ.get("LOCAL_RANK", "0"))
    except ValueError:
        return SINGLE
    return World(rank, size, local) if size > 1 else SINGLE


def local_device(world: World, device: torch.device) -> torch.device:
    """Each process of a GPU launch takes the GPU of its local rank; CPU processes share the CPU."""
    if world.active and device.type == "cuda":
        return torch.device("cuda", world.local_rank % max(torch.cuda.device_count(), 1))
    return device


def join(world: World, device: torch.device) -> None:
    import torch.distributed as dist

    if not world.active or dist.is_initialized():
        return
    if device.type == "cuda":
        torch.cuda.set_device(device)
    dist.init_process_group("nccl" if device.type == "cuda" else "gloo", timeout=TIMEOUT)


def leave() -> None:
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def per_process_batch(batch_size: int, world: World) -> int:
    return max(1, math.ceil(batch_size / world.size))


def shard(count: int, world: World) -> list[int]:
    """This process's indices of `count` items (every size-th one): shares differ by at most one."""
    return list(range(world.rank, count, world.size))


def gather(value: Any, world: World) -> list[Any]:
    """Every process's `value`, in rank order (pickled: for results, not for gradients)."""
    if not world.active:
        return [value]
    import torch.distributed as dist

    found: list[Any] = [None] * world.size
    dist.all_gather_object(found, value)
    return found


def total(values: Sequence[float], world: World, device: torch.device) -> list[float]:
    """The sum of `values` over all processes (NCCL wants the tensor on the GPU, gloo on the CPU)."""
    if not world.active:
        return list(values)
    import torch.distributed as dist

    where = device if device.type == "cuda" else torch.device("cpu")
    tensor = torch.tensor(list(values), dtype=torch.float64, device=where)
    dist.all_reduce(tensor)
    return tensor.tolist()


def agree(stop: bool, diverged: bool, world: World, device: torch.device,
          unreadable: bool = False) -> tuple[bool, bool, bool]:
    """Whether any process wants to stop, saw a non-finite loss or has no readable file to train on: all
    must leave at the same step, or the others would wait for their gradients' all-reduce until the timeout."""
    if not world.active:
        return stop, diverged, unreadable
    stops, diverges, unreadables = total([float(stop), float(diverged), float(unreadable)], world, device)
    return stops > 0, diverges > 0, unreadables > 0


def barrier(world: World) -> None:
    """Wait for every process: the others must not exit (the launcher would stop rank 0) while it writes."""
    if world.active:
        import torch.distributed as dist

        dist.barrier()


def wrap(module: nn.Module, world: World, device: torch.device) -> nn.Module:
    """DistributedDataParallel around the module that trains (its frozen parameters are left out)."""
    if not world.active:
        return module
    from torch.nn.parallel import DistributedDataParallel

    return DistributedDataParallel(module, device_ids=[device.index] if device.type == "cuda" else None)


class ShardedEpochSampler(EpochSampler):
    """torch's DistributedSampler (shuffled by seed and epoch, padded so every process has as many
    batches) yielding the (epoch, index) pairs the studio's datasets seed their augmentation with."""

    def __init__(self, size: int, seed: int, world: World) -> None:
        super().__init__(size, seed)
        self.inner = DistributedSampler(range(size), num_replicas=world.size, rank=world.rank, shuffle=True,
                                        seed=seed % 2**31)

    def set_epoch(self, epoch: int) -> None:
        super().set_epoch(epoch)
        self.inner.set_epoch(epoch)

    def __iter__(self) -> Iterator[tuple[int, int]]:
        for index in self.inner:
            yield self.epoch, index

    def __len__(self) -> int:
        return len(self.inner)


def sharded_order(order: torch.Tensor, world: World) -> torch.Tensor:
    """This process's part of a shuffled order, padded as DistributedSampler pads (for cached embeddings)."""
    if not world.active:
        return order
    per = math.ceil(len(order) / world.size)
    if not len(order):
        return order
    padded = order.repeat(math.ceil(per * world.size / len(order)))[: per * world.size]  # fewer rows than ranks too
    return padded[world.rank :: world.size]


def _entry(frozen: bool) -> list[str]:
    """How a launched process starts the studio: `python -m tlstudio`, or the frozen app itself."""
    import sys

    return ["--no-python", sys.executable] if frozen else ["--module", "tlstudio"]


def launcher_arguments(command: Sequence[str], devices: int, nnodes: int = 1, endpoint: str = "",
                       frozen: bool | None = None, entry: Sequence[str] | None = None) -> list[str]:
    """torch.distributed.run's arguments for `tlstudio COMMAND` (or `entry` COMMAND) on `devices` processes per
    machine."""
    import sys

    frozen = bool(getattr(sys, "frozen", False)) if frozen is None else frozen
    if nnodes > 1:
        import hashlib
        import socket

        where = endpoint or f"{socket.gethostname()}:29400"
        meeting = [f"--nnodes={nnodes}", "--rdzv-backend=c10d", f"--rdzv-endpoint={where}",
                   f"--rdzv-id=tlstudio-{hashlib.sha256(' '.join(command).encode()).hexdigest()[:12]}"]
    else:
        meeting = ["--standalone", "--nnodes=1"]
    return [*meeting, f"--nproc-per-node={devices}", *(entry if entry is not None else _entry(frozen)), *command]


def torchrun_command(command: Sequence[str], devices: int, nnodes: int = 1, endpoint: str = "") -> str:
    import shlex

    return shlex.join(["torchrun", *launcher_arguments(command, devices, nnodes, endpoint)])


def launch(command: Sequence[str], devices: int, entry: Sequence[str] | None = None) -> int:
    """Run `tlstudio COMMAND` on `devices` local processes through torch.distributed.run (torchrun's code,
    called in this process): its agent starts them, forwards Ctrl-C, and stops them all if one fails.
    Returns rank 0's exit status (the ranks print their own errors)."""
    import logging
    import signal

    from torch.distributed.elastic.multiprocessing.api import SignalException
    from torch.distributed.elastic.multiprocessing.errors import ChildFailedError
    from torch.distributed.run import get_args_parser, run

    logging.getLogger("torch.distributed.elastic").setLevel(logging.CRITICAL)  # the ranks speak for themselves
    arguments = get_args_parser().parse_args(launcher_arguments(command, devices, entry=entry))
    try:
        run(arguments)
    except ChildFailedError as exc:
        failures = exc.failures
        first = failures.get(0) or failures[min(failures)]
        return first.exitcode if first.exitcode > 0 else 1
    except SignalException as exc:
        return 143 if exc.sigval == signal.SIGTERM else 130
    return 0


def launch_device(wanted: str, devices: int) -> str:
    """The device type `devices` processes will train on; a GPU launch needs a GPU per process. On the CPU the
    cores are shared out between the processes (torchrun would set 1 thread each and warn)."""
    from tlstudio.core import devices as known
    from tlstudio.core.errors import ConfigError

    kind = known.resolve(wanted).split(":")[0]
    if kind == "mps":
        raise ConfigError("Apple's MPS runs one process; --devices needs CUDA GPUs or the CPU.",
                          "Use --devices 1, or --device cpu to train on CPU processes.")
    if kind == "cuda" and devices > torch.cuda.device_count():
        raise ConfigError(f"--devices {devices} asks for a GPU per process; this machine has "
                          f"{torch.cuda.device_count()}.", f"Use --devices {torch.cuda.device_count()}.")
    if kind == "cpu":
        os.environ.setdefault("OMP_NUM_THREADS", str(max(1, (os.cpu_count() or 1) // devices)))
    return kind
