"""Where a training loop's batches come from: the two paths behind the engine's one loop.

- `FeatureSource` (fast path: feature extraction, no augmentation): the backbone ran once per file
  (embedding.py); only the head trains, on cached embeddings, so an epoch costs almost nothing.
- `FileSource` (full path): files are decoded and augmented every epoch and flow through the network.

Both give `train_batches(epoch)` in an order that is a function of (seed, epoch) only, `val_batches()`
in file order, the module that trains and the prefix of its parameters in the full model's state.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING, Protocol

import torch
from torch import nn
from torch.utils.data import DataLoader

from tlstudio.core.control import Cancelled
from tlstudio.core.data.loaders import Batch, EpochSampler, auto_workers, make_loader
from tlstudio.core.data.spec import Sample
from tlstudio.core.seeding import derive_seed
from tlstudio.core.training import distributed
from tlstudio.core.training.distributed import World
from tlstudio.core.training.embedding import Embedded

if TYPE_CHECKING:
    from tlstudio.core.training.resolved import ResolvedRun

VAL_FILES_PER_BATCH = 1024
NoteBad = Callable[[Sequence[Sample], list[tuple[int, str]]], None]


class FeatureSource:
    def __init__(self, head: nn.Module, train: Embedded, val: Embedded, batch_size: int, seed: int,
                 device: torch.device, world: World = distributed.SINGLE) -> None:
        self.module = head
        self.prefix = "head."
        self.seed = seed
        self.world = world  # launched on many processes: each trains on its share of every epoch's order
        self.batch_size = distributed.per_process_batch(batch_size, world)
        # float16 rows, mapped from a file on the CPU (mapped.py: memory stays flat in the files), copied
        # whole to an accelerator; each batch is made float32 as it is taken
        self.train_x = train.features.to(device)
        self.train_y = train.window_labels().to(device)
        self.val = val
        self.val_x = val.features.to(device)
        self.val_offsets = torch.tensor([0, *val.counts]).cumsum(0).tolist()
        share = -(-len(self.train_y) // world.size)
        self.steps = -(-share // self.batch_size)

    def train_batches(self, epoch: int) -> Iterator[Batch]:
        generator = torch.Generator().manual_seed(derive_seed(self.seed, "order", epoch))
        order = distributed.sharded_order(torch.randperm(len(self.train_y), generator=generator), self.world)
        for start in range(0, len(order), self.batch_size):
            index = order[start : start + self.batch_size]
            yield {"images": self.train_x[index].float(), "labels": self.train_y[index], "indices": index, "bad": [],
                   "groups": None}

    def close(self) -> None:
        """Nothing to stop: embeddings are tensors (mapped or in memory)."""

    def val_batches(self) -> Iterator[Batch]:
        kept = self.val.kept
        for first in range(0, len(kept), VAL_FILES_PER_BATCH):
            last = min(first + VAL_FILES_PER_BATCH, len(kept))
            rows = self.val_x[self.val_offsets[first] : self.val_offsets[last]]
            yield {"images": rows.float(), "labels": self.val.labels[first:last],
                   "indices": torch.tensor(kept[first:last], dtype=torch.long), "bad": [],
                   "groups": self.val.counts[first:last]}


class FileSource:
    def __init__(self, model: nn.Module, train_dataset, val_dataset, train: Sequence[Sample], val: Sequence[Sample],
                 batch_size: int, workers: int, device: torch.device, seed: int, note_bad: NoteBad,
                 stopping: Callable[[], bool] = lambda: False, world: World = distributed.SINGLE,
                 eval_batch: int | None = None) -> None:
        """On many processes `val_dataset` and `val` are this process's share; the training files are shared
        out by the sampler (DistributedSampler), each process reading batches of batch_size / processes."""
        self.module = model
        self.prefix = ""
        self.train = train
        self.val = val
        self.note_bad = note_bad
        self.stopping = stopping
        self.world = world
        self.sampler = distributed.ShardedEpochSampler(len(train), seed, world) if world.active else \
            EpochSampler(len(train), seed)
        batch_size = distributed.per_process_batch(batch_size, world)
        self.loader = make_loader(train_dataset, batch_size, workers, device, sampler=self.sampler,
                                  drop_last=len(self.sampler) > batch_size)
        self.val_loader = make_loader(val_dataset, eval_batch or batch_size, workers, device)
        self.steps = len(self.loader)

    def train_batches(self, epoch: int) -> Iterator[Batch]:
        self.sampler.set_epoch(epoch)
        # together, every process takes every step, even one whose files all failed (steps.train_epoch)
        return readable(self.loader, self.train, self.note_bad, self.stopping, keep_empty=self.world.active)

    def val_batches(self) -> Iterator[Batch]:
        return readable(self.val_loader, self.val, self.note_bad, self.stopping)

    def close(self) -> None:
        """Stop persistent worker processes now, in order, rather than whenever the loaders are collected
        (a worker torn down during interpreter exit can abort and print a traceback over a clean stop)."""
        for loader in (self.loader, self.val_loader):
            iterator = getattr(loader, "_iterator", None)
            if iterator is not None and hasattr(iterator, "_shutdown_workers"):
                iterator._shutdown_workers()
                loader._iterator = None


def readable(loader: DataLoader, samples: Sequence[Sample], note_bad: NoteBad,
             stopping: Callable[[], bool] = lambda: False, keep_empty: bool = False) -> Iterator[Batch]:
    """The loader's batches; files that failed to decode are reported once and left out.

    A worker process that dies while the user is stopping the run (the terminal's Ctrl-C reaches the
    whole process group) is part of the stop, not a crash: the run unwinds as cancelled and saves."""
    try:
        for batch in loader:
            if batch["bad"]:
                note_bad(samples, batch["bad"])
            if batch["labels"].numel() or keep_empty:
                yield batch
    except RuntimeError as exc:
        if stopping() and "DataLoader worker" in str(exc):
            raise Cancelled() from exc
        raise


class BatchSource(Protocol):
    """What the loop trains from: `module` trains (its state is `prefix` + key in the full model's)."""

    module: nn.Module
    prefix: str
    steps: int

    def train_batches(self, epoch: int) -> Iterator[Batch]: ...
    def val_batches(self) -> Iterator[Batch]: ...
    def close(self) -> None: ...


def make_source(run: ResolvedRun, embedded: dict[str, Embedded], note_bad: NoteBad,
                stopping: Callable[[], bool]) -> BatchSource:
    """The fast path's cached embeddings or the full path's files, for the model as it is now frozen."""
    config, together = run.config, run.together
    if run.fast_path:
        return FeatureSource(run.model.head, embedded["train"], embedded["val"], config.batch_size, config.seed,
                             run.device, together.world)
    workers = auto_workers(len(run.spec.train) // together.size, config.workers)
    val = together.mine(run.spec.val)
    return FileSource(run.model, run.pipeline.train_dataset(run.spec.train, run.augment, config.seed),
                      run.pipeline.eval_dataset(val), run.spec.train, val, config.batch_size, workers, run.device,
                      config.seed, note_bad, stopping=stopping, world=together.world, eval_batch=run.micro_batch())


def eval_batches(run: ResolvedRun, embedded: dict[str, Embedded], split: str, note_bad: NoteBad,
                 samples: Sequence[Sample] | None = None, stopping: Callable[[], bool] = lambda: False,
                 ) -> tuple[nn.Module, Iterator[Batch], Sequence[Sample]]:
    """(the module that scores, its batches, the files they index) for a whole split in file order: its cached
    embeddings through the head, or its files (or `samples` of it) through the whole model."""
    if run.fast_path and samples is None:
        rows = embedded[split]
        source = FeatureSource(run.model.head, rows, rows, run.config.batch_size, 0, run.device)
        return run.model.head, source.val_batches(), run.split_samples(split)
    files = run.split_samples(split) if samples is None else samples
    return run.model, readable(run.eval_loader(list(files), 0), files, note_bad, stopping), files
