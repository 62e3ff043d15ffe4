"""Sound clips as a Dataset: random 1-second crops with augmentation for training, all sliding windows
for evaluation (scores are averaged per clip). Module-level code only, so spawned workers can use it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch.utils.data import Dataset

from tlstudio.core.data.image_files import item_key
from tlstudio.core.data.spec import Sample, target_tensor
from tlstudio.core.media.audio import AudioDecodeError, AudioSettings, fit_window, load_mono, sliding_windows
from tlstudio.core.seeding import seeded_torch


def augment_wave(wave: torch.Tensor, strength: str) -> torch.Tensor:
    """Gain and background noise; the time shift is the random crop/pad position chosen by the caller."""
    if strength == "none":
        return wave
    gain_db = float(torch.empty(1).uniform_(-6.0, 6.0))
    wave = wave * (10 ** (gain_db / 20))
    if float(torch.rand(1)) < (0.5 if strength == "light" else 0.8):
        snr_db = float(torch.empty(1).uniform_(10.0 if strength == "strong" else 20.0, 40.0))
        power = wave.pow(2).mean().clamp_min(1e-10)
        noise = torch.randn_like(wave) * torch.sqrt(power / (10 ** (snr_db / 10)))
        wave = wave + noise
    return wave


class AudioClips(Dataset):
    def __init__(self, samples: Sequence[Sample], settings: AudioSettings, train: bool, augment: str = "none",
                 seed: int = 0) -> None:
        self.samples = list(samples)
        self.seed = seed
        self.settings = settings
        self.train = train
        self.augment = augment
        self.collate_name = "single" if train else "windows"

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, key: int | tuple[int, int]) -> tuple[torch.Tensor | None, int, int, str]:
        index, item_seed = item_key(key, self.seed)
        sample = self.samples[index]
        try:
            wave = load_mono(sample.path, self.settings.sample_rate)
        except AudioDecodeError as exc:
            return None, sample.target, index, str(exc)
        length = self.settings.window
        if self.train:
            with seeded_torch(item_seed):
                slack = abs(wave.shape[-1] - length)
                offset = int(torch.randint(0, slack + 1, (1,))) if self.augment != "none" else None
                return augment_wave(fit_window(wave, length, offset), self.augment), sample.target, index, ""
        return sliding_windows(wave, length, self.settings.hop), sample.target, index, ""


def collate_windows(batch: list[tuple[Any, int, int, str]]) -> dict[str, Any]:
    """Each item is (W, samples); windows are concatenated and `groups` says how many belong to each clip."""
    good = [item for item in batch if item[0] is not None]
    bad = [(item[2], item[3]) for item in batch if item[0] is None]
    if good:
        images = torch.cat([item[0] for item in good])
        groups = [int(item[0].shape[0]) for item in good]
    else:
        images, groups = torch.empty(0), []
    return {
        "images": images,
        "labels": target_tensor([item[1] for item in good]),
        "indices": torch.tensor([item[2] for item in good], dtype=torch.long),
        "bad": bad,
        "groups": groups,
    }


def pool_groups(values: torch.Tensor, groups: list[int] | None) -> torch.Tensor:
    """Average per clip the rows that belong to it."""
    if not groups or len(groups) == values.shape[0]:
        return values
    return torch.stack([chunk.mean(dim=0) for chunk in torch.split(values, groups)])


def clip_probabilities(logits: torch.Tensor, groups: list[int] | None) -> torch.Tensor:
    """The one pooling rule for long clips, everywhere (validation, metrics, Evaluate, predict, exports):
    the mean of the windows' class probabilities."""
    return pool_groups(logits.float().softmax(dim=1), groups)
