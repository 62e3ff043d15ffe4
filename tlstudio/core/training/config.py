"""Everything a run needs to be repeated: saved as config.json in the run folder."""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any

from tlstudio.core.errors import ConfigError
from tlstudio.core.models.catalogue import DEFAULT_BACKBONE

AUGMENT_PRESETS = ("none", "light", "strong")
SCHEDULES = ("one-phase", "two-phase")


@dataclass
class TrainConfig:
    data: str = ""
    backbone: str = DEFAULT_BACKBONE
    pretrained: str = "imagenet"  # "imagenet", "none" (random init) or a path to a weights file
    unfreeze: str = "0"  # number of top blocks that train, or "all"
    head: str = "linear"
    schedule: str = "one-phase"
    warmup_epochs: int = 2
    epochs: int = 10
    batch_size: int = 32
    lr: float = 3e-3  # the head's; the backbone gets lr * backbone_lr_factor
    backbone_lr_factor: float = 0.1
    weight_decay: float = 1e-4
    label_smoothing: float = 0.0
    augment: str = "auto"  # "auto" = none for feature extraction, light when fine-tuning
    val_split: float = 0.2
    seed: int = 0
    device: str = "auto"
    amp: bool = True  # mixed precision where the device supports it (CUDA)
    workers: int = -1  # DataLoader workers; -1 = decide from the data size and CPU count
    cache_features: bool = True
    window_seconds: float = 1.0  # sound: the clip length the model sees; longer clips are windowed

    def resolved_augment(self, unfreeze_blocks: int) -> str:
        if self.augment != "auto":
            return self.augment
        fine_tunes = unfreeze_blocks > 0 or self.schedule == "two-phase"
        return "light" if fine_tunes else "none"

    def validate(self) -> None:
        if self.epochs < 1:
            raise ConfigError("Train for at least one epoch.")
        if self.batch_size < 1:
            raise ConfigError("The batch size must be at least 1.")
        if self.lr <= 0:
            raise ConfigError("The learning rate must be positive.")
        if self.augment not in (*AUGMENT_PRESETS, "auto"):
            raise ConfigError(f"--augment takes one of {', '.join(AUGMENT_PRESETS)}, not '{self.augment}'.")
        if self.schedule not in SCHEDULES:
            raise ConfigError(f"--schedule takes one of {', '.join(SCHEDULES)}, not '{self.schedule}'.")
        if self.schedule == "two-phase" and not 1 <= self.warmup_epochs < self.epochs:
            raise ConfigError(
                f"A two-phase schedule needs 1 <= --warmup-epochs < --epochs ({self.warmup_epochs} vs {self.epochs})."
            )
        if not 0.1 <= self.window_seconds <= 30:
            raise ConfigError("--window takes a length in seconds between 0.1 and 30.")
        if self.head not in ("linear", "mlp"):
            raise ConfigError(f"--head takes linear or mlp, not '{self.head}'.")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrainConfig:
        known = {f.name for f in fields(cls)}
        return cls(**{key: value for key, value in data.items() if key in known})


def from_scratch(config: TrainConfig) -> TrainConfig:
    """The same network, head and budget without pretraining: what transfer learning is measured against.

    Everything trains (nothing pretrained is worth freezing), at one learning rate, with the same epochs,
    batch size and augmentation as the run it is compared with.
    """
    data = config.to_dict()
    data.update(pretrained="none", unfreeze="all", backbone_lr_factor=1.0, schedule="one-phase")
    if data["augment"] == "auto":
        data["augment"] = "light"
    return TrainConfig.from_dict(data)
