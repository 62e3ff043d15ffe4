"""A Dataset over (path, label) samples that survives files which fail to decode.

Module-level classes and functions only, so DataLoader workers work with the spawn start method
(needed inside Qt and in frozen apps).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch.utils.data import Dataset

from tlstudio.core.data.spec import Sample, target_tensor
from tlstudio.core.media.images import ImageDecodeError, load_rgb
from tlstudio.core.seeding import derive_seed, seeded_torch


class ImageFiles(Dataset):
    """Items are looked up by index, or by (epoch, index) from an EpochSampler: then the augmentation
    draws from a generator seeded by (seed, epoch, index), the same in any worker and after a resume."""

    collate_name = "single"

    def __init__(self, samples: Sequence[Sample], transform: Callable[[Any], torch.Tensor],
                 min_side: int | None, seed: int = 0) -> None:
        self.samples = list(samples)
        self.transform = transform
        self.min_side = min_side
        self.seed = seed

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, key: int | tuple[int, int]) -> tuple[torch.Tensor | None, int, int, str]:
        index, item_seed = item_key(key, self.seed)
        sample = self.samples[index]
        try:
            image = load_rgb(sample.path, self.min_side)
        except ImageDecodeError as exc:
            return None, sample.target, index, str(exc)
        except OSError as exc:  # deleted or unreadable since the scan
            return None, sample.target, index, f"cannot be read ({exc.strerror or exc})"
        with seeded_torch(item_seed):
            return self.transform(image), sample.target, index, ""


def collate_skipping_bad(batch: list[tuple[torch.Tensor | None, int, int, str]]) -> dict[str, Any]:
    good = [item for item in batch if item[0] is not None]
    bad = [(item[2], item[3]) for item in batch if item[0] is None]
    if good:
        images = torch.stack([item[0] for item in good])
        labels = target_tensor([item[1] for item in good])
        indices = torch.tensor([item[2] for item in good], dtype=torch.long)
    else:
        images = torch.empty(0)
        labels = torch.empty(0, dtype=torch.long)
        indices = torch.empty(0, dtype=torch.long)
    return {"images": images, "labels": labels, "indices": indices, "bad": bad, "groups": None}


def item_key(key: int | tuple[int, int], seed: int) -> tuple[int, int | None]:
    """(index, the item's augmentation seed or None for evaluation)."""
    if isinstance(key, tuple):
        epoch, index = key
        return int(index), derive_seed(seed, "item", epoch, index)
    return int(key), None
