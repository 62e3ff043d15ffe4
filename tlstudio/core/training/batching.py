"""Batches of cached embeddings for the fast path, and the learning-rate schedule both paths share."""

from __future__ import annotations

import math
from collections.abc import Iterator

import torch

from tlstudio.core.data.loaders import Batch


def tensor_batches(features: torch.Tensor, labels: torch.Tensor, batch_size: int,
                   generator: torch.Generator | None) -> Iterator[Batch]:
    n = len(labels)
    order = torch.randperm(n, generator=generator) if generator is not None else torch.arange(n)
    for start in range(0, n, batch_size):
        index = order[start : start + batch_size]
        yield {"images": features[index], "labels": labels[index], "indices": index, "bad": [], "groups": None}


MIN_WARMUP_STEPS = 8


def warmup_cosine(total_steps: int, warmup_share: float = 0.1, floor: float = 0.01):
    """Linear warm-up then cosine decay to `floor` x the peak; works for any number of steps, even 1."""
    warmup = max(1, round(total_steps * warmup_share), min(MIN_WARMUP_STEPS, total_steps // 3))

    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        progress = min(1.0, (step - warmup) / max(1, total_steps - warmup))
        return floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * progress))

    return factor
