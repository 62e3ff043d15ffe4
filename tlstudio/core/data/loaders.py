"""DataLoaders over a split's files: spawn-safe workers, pinned memory on CUDA, seeded shuffles."""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from typing import Any

import torch
from torch.utils.data import DataLoader, Dataset, Sampler

from tlstudio.core.data.audio_clips import collate_windows
from tlstudio.core.data.image_files import collate_skipping_bad
from tlstudio.core.seeding import derive_seed

Batch = dict[str, Any]


def auto_workers(n_samples: int, requested: int) -> int:
    if requested >= 0:
        return requested
    cpus = os.cpu_count() or 1
    # Spawned workers cost seconds to start; on small data or two cores the main process decodes faster.
    if cpus <= 2 or n_samples < 1000:
        return 0
    return min(4, cpus - 1)


class EpochSampler(Sampler):
    """Yields (epoch, index) pairs in an order that is a function of (seed, epoch) alone.

    Workers receive the epoch with each index, so augmentation can be seeded per (seed, epoch, index):
    persistent workers, a different worker count or a resumed process all see exactly the same batches.
    """

    def __init__(self, size: int, seed: int) -> None:
        self.size = size
        self.seed = seed
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __iter__(self) -> Iterator[tuple[int, int]]:
        generator = torch.Generator().manual_seed(derive_seed(self.seed, "order", self.epoch))
        for index in torch.randperm(self.size, generator=generator).tolist():
            yield self.epoch, index

    def __len__(self) -> int:
        return self.size


def make_loader(dataset: Dataset, batch_size: int, workers: int, device: torch.device,
                sampler: EpochSampler | None = None, drop_last: bool = False) -> DataLoader:
    """Training loaders take an EpochSampler (seeded order and augmentation); evaluation reads in order."""
    kwargs: dict[str, Any] = {}
    if workers > 0:  # spawn: safe inside Qt and in frozen apps
        kwargs.update(multiprocessing_context="spawn", persistent_workers=True, prefetch_factor=4,
                      worker_init_fn=prepare_worker)
    collate = collate_windows if getattr(dataset, "collate_name", "single") == "windows" else collate_skipping_bad
    return StudioLoader(
        dataset,
        batch_size=batch_size,
        sampler=sampler,
        num_workers=workers,
        collate_fn=collate,
        pin_memory=device.type == "cuda",
        drop_last=drop_last,
        **kwargs,
    )


class StudioLoader(DataLoader):
    """A DataLoader whose worker processes never see the terminal's Ctrl-C.

    A spawned worker spends seconds importing before its init function runs; a Ctrl-C then would kill it
    and crash the run. SIGINT is ignored while workers start (an ignored signal stays ignored in the new
    process), so only the main process hears it: it stops after the batch and saves.
    """

    def _get_iterator(self):
        if self.num_workers == 0 or threading.current_thread() is not threading.main_thread():
            return super()._get_iterator()
        import signal

        previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
        try:
            return super()._get_iterator()
        finally:
            signal.signal(signal.SIGINT, previous)


def prepare_worker(_worker_id: int) -> None:
    """Workers leave Ctrl-C to the main process, which stops after the batch and saves.

    A worker also skips interpreter finalization when it is told to stop: its queue's feeder thread may
    still be handing a batch over (`share_fd`, a C++ frame that cannot unwind), and Python ends such
    daemon threads with a forced unwind, which aborts the worker ("terminate called without an active
    exception") and makes the main process report a crash over a clean stop. The batch is not wanted."""
    import atexit
    import signal

    signal.signal(signal.SIGINT, signal.SIG_IGN)
    atexit.register(os._exit, 0)
