"""How an image becomes a network input; saved with every run and export so they cannot disagree."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any


@dataclass(frozen=True)
class Preprocess:
    """What an input goes through before the network: saved with every run and export."""

    resize: int
    crop: int
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    interpolation: str  # "bilinear" or "bicubic"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Preprocess:
        return cls(
            resize=int(data["resize"]),
            crop=int(data["crop"]),
            mean=tuple(data["mean"]),
            std=tuple(data["std"]),
            interpolation=str(data["interpolation"]),
        )
