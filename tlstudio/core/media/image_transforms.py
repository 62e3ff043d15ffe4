"""Image preprocessing and augmentation presets, built from the backbone's own weights transforms."""

from __future__ import annotations

from typing import Any

import torch
from torchvision.transforms import InterpolationMode
from torchvision.transforms import v2 as T

from tlstudio.core.backbones import Preprocess


def _interpolation(pre: Preprocess) -> InterpolationMode:
    return InterpolationMode(pre.interpolation)


def eval_transform(pre: Preprocess) -> T.Compose:
    """Exactly what torchvision's weights expect: resize the short side, centre crop, normalise."""
    return T.Compose([
        T.PILToTensor(),
        T.Resize(pre.resize, interpolation=_interpolation(pre), antialias=True),
        T.CenterCrop(pre.crop),
        T.ToDtype(torch.float32, scale=True),
        T.Normalize(pre.mean, pre.std),
    ])


def train_transform(pre: Preprocess, preset: str) -> T.Compose:
    if preset == "none":
        return eval_transform(pre)
    steps: list[Any] = [T.PILToTensor()]
    if preset == "light":
        steps += [
            T.RandomResizedCrop(pre.crop, scale=(0.6, 1.0), interpolation=_interpolation(pre), antialias=True),
            T.RandomHorizontalFlip(),
        ]
    elif preset == "strong":
        steps += [
            T.RandomResizedCrop(pre.crop, scale=(0.25, 1.0), interpolation=_interpolation(pre), antialias=True),
            T.RandomHorizontalFlip(),
            T.TrivialAugmentWide(interpolation=_interpolation(pre)),
        ]
    else:
        raise ValueError(f"unknown augmentation preset {preset!r}")
    steps += [T.ToDtype(torch.float32, scale=True), T.Normalize(pre.mean, pre.std)]
    if preset == "strong":
        steps.append(T.RandomErasing(p=0.25))
    return T.Compose(steps)
