"""What a modality needs from the engine's point of view: datasets, a front end, and how to describe it.

The engine, the feature cache and prediction only talk to a pipeline, so images and sound share one
training loop.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from torch import nn
from torch.utils.data import Dataset

from tlstudio.core.data.spec import Sample
from tlstudio.core.media.audio import AudioSettings
from tlstudio.core.media.preprocess import Preprocess

# Bumped whenever decoding or preprocessing arithmetic changes: cached embeddings of older versions are
# then never served (the feature cache keys on it).
PIPELINE_VERSION = 3


@dataclass(frozen=True)
class ImagePipeline:
    preprocess: Preprocess
    modality: str = "image"

    def describe(self) -> dict[str, Any]:
        return {"modality": "image", "preprocess": self.preprocess.to_dict()}

    def train_dataset(self, samples: Sequence[Sample], augment: str, seed: int = 0) -> Dataset:
        from tlstudio.core.data.image_files import ImageFiles
        from tlstudio.core.media.image_transforms import train_transform

        return ImageFiles(samples, train_transform(self.preprocess, augment), self.preprocess.resize, seed)

    def eval_dataset(self, samples: Sequence[Sample]) -> Dataset:
        from tlstudio.core.data.image_files import ImageFiles
        from tlstudio.core.media.image_transforms import eval_transform

        # full decoding (no JPEG draft mode): the pixels a user of an exported model would have
        return ImageFiles(samples, eval_transform(self.preprocess), None)

    def frontend(self, augment: str) -> nn.Module | None:
        return None


@dataclass(frozen=True)
class AudioPipeline:
    settings: AudioSettings
    frontend_kind: str  # "logmel" (spectrogram into an image backbone) or "raw" (audio encoders)
    modality: str = "audio"

    def describe(self) -> dict[str, Any]:
        return {"modality": "audio", "audio": self.settings.to_dict(), "frontend": self.frontend_kind}

    def train_dataset(self, samples: Sequence[Sample], augment: str, seed: int = 0) -> Dataset:
        from tlstudio.core.data.audio_clips import AudioClips

        return AudioClips(samples, self.settings, train=True, augment=augment, seed=seed)

    def eval_dataset(self, samples: Sequence[Sample]) -> Dataset:
        from tlstudio.core.data.audio_clips import AudioClips

        return AudioClips(samples, self.settings, train=False)

    def frontend(self, augment: str) -> nn.Module | None:
        if self.frontend_kind != "logmel":
            return None
        from tlstudio.core.media.audio_frontend import LogMelImage

        return LogMelImage(self.settings, spec_augment=augment in ("light", "strong"))


def pipeline_from_description(description: dict[str, Any]) -> ImagePipeline | AudioPipeline:
    """Rebuild a run's pipeline from what labels.json / model.pt recorded."""
    if description.get("modality", "image") == "audio":
        return AudioPipeline(AudioSettings.from_dict(description["audio"]), description.get("frontend", "logmel"))
    return ImagePipeline(Preprocess.from_dict(description["preprocess"]))
