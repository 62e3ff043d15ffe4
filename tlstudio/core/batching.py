"""How batches reach the loop: DataLoaders over image files, or shuffled slices of cached embeddings."""

from __future__ import annotations

import math
import os
from collections.abc import Iterator
from typing import Any

import torch
from torch.utils.data import DataLoader, Dataset

from tlstudio.core.media.audio_dataset import collate_windows
from tlstudio.core.media.image_dataset import collate_skipping_bad

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


def tensor_batches(features: torch.Tensor, labels: torch.Tensor, batch_size: int,
                   generator: torch.Generator | None) -> Iterator[Batch]:
    n = len(labels)
    order = torch.randperm(n, generator=generator) if generator is not None else torch.arange(n)
    for start in range(0, n, batch_size):
        index = order[start : start + batch_size]
        yield {"images": features[index], "labels": labels[index], "indices": index, "bad": [], "groups": None}


def warmup_cosine(total_steps: int, warmup_share: float = 0.1, floor: float = 0.01):
    """Linear warm-up then cosine decay to `floor` x the peak; works for any number of steps, even 1."""
    warmup = max(1, round(total_steps * warmup_share))

    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        progress = min(1.0, (step - warmup) / max(1, total_steps - warmup))
        return floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * progress))

    return factor
