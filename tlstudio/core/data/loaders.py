"""DataLoaders over a split's files: spawn-safe workers, pinned memory on CUDA, seeded shuffles."""

from __future__ import annotations

import os
from typing import Any

import torch
from torch.utils.data import DataLoader, Dataset

from tlstudio.core.data.audio_clips import collate_windows
from tlstudio.core.data.image_files import collate_skipping_bad

Batch = dict[str, Any]


def auto_workers(n_samples: int, requested: int) -> int:
    if requested >= 0:
        return requested
    cpus = os.cpu_count() or 1
    # Spawned workers cost seconds to start; on small data or two cores the main process decodes faster.
    if cpus <= 2 or n_samples < 1000:
        return 0
    return min(4, cpus - 1)


def make_loader(dataset: Dataset, batch_size: int, workers: int, device: torch.device,
                generator: torch.Generator | None = None, drop_last: bool = False) -> DataLoader:
    """Shuffles when given a generator (its state is checkpointed, so a resumed run sees the same order)."""
    kwargs: dict[str, Any] = {}
    if workers > 0:  # spawn: safe inside Qt and in frozen apps
        kwargs.update(multiprocessing_context="spawn", persistent_workers=True, prefetch_factor=4)
    collate = collate_windows if getattr(dataset, "collate_name", "single") == "windows" else collate_skipping_bad
    return DataLoader(
        dataset,
        batch_size=batch_size,
        shuffle=generator is not None,
        num_workers=workers,
        collate_fn=collate,
        pin_memory=device.type == "cuda",
        drop_last=drop_last,
        generator=generator,
        **kwargs,
    )
