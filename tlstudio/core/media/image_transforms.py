"""Image preprocessing and augmentation presets, built from the backbone's own weights transforms."""

from __future__ import annotations

from typing import Any

import torch
from torchvision.transforms import InterpolationMode
from torchvision.transforms import v2 as T

from tlstudio.core.media.preprocess import Preprocess


def _interpolation(pre: Preprocess) -> InterpolationMode:
    return InterpolationMode(pre.interpolation)


class CentreRegionResize(torch.nn.Module):
    """The region that "resize the short side to `resize`, centre-crop `crop`" keeps, resized straight to
    crop x crop (antialiased), on float [0, 1] pixels.

    The exported models (export.py) compute exactly this, so the studio and an export agree to float
    precision; doing the crop first also gives the network a fixed input size in ONNX.
    """

    def __init__(self, resize: int, crop: int, mode: str) -> None:
        super().__init__()
        self.resize, self.crop, self.mode = resize, crop, mode

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h, w = x.shape[-2], x.shape[-1]
        side = max(min(h, w) * self.crop // self.resize, 1)
        top, left = (h - side) // 2, (w - side) // 2
        region = x[..., top : top + side, left : left + side]
        batch = region.unsqueeze(0) if region.ndim == 3 else region
        out = torch.nn.functional.interpolate(batch, size=(self.crop, self.crop), mode=self.mode, antialias=True,
                                              align_corners=False).clamp(0.0, 1.0)
        return out[0] if region.ndim == 3 else out


def eval_transform(pre: Preprocess) -> T.Compose:
    """What the weights expect (short side to `resize`, centre crop, normalise), as the exports do it."""
    return T.Compose([
        T.PILToTensor(),
        T.ToDtype(torch.float32, scale=True),
        CentreRegionResize(pre.resize, pre.crop, pre.interpolation),
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
