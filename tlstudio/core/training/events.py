"""What the engine tells whoever listens: plain dataclasses, cheap to copy across threads."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class RunStarted:
    run_dir: str
    config: dict[str, Any]
    sizes: dict[str, int]
    classes: list[str]
    modality: str = "image"


@dataclass(frozen=True)
class ModelReady:
    backbone: str
    device: str
    trainable_blocks: list[str]
    frozen_blocks: list[str]
    trainable_params: int
    total_params: int
    fast_path: bool


@dataclass(frozen=True)
class Progress:
    """Work that is not an epoch: scanning, feature extraction, downloads."""

    stage: str
    done: int
    total: int


@dataclass(frozen=True)
class PhaseStarted:
    phase: str
    first_epoch: int
    last_epoch: int
    trainable_blocks: list[str]
    trainable_params: int


@dataclass(frozen=True)
class BatchEnd:
    epoch: int
    step: int
    steps_per_epoch: int
    loss: float
    lr: float
    samples_per_s: float


@dataclass(frozen=True)
class EpochEnd:
    epoch: int
    epochs: int
    train_loss: float
    train_score: float  # the objective's score named by score_name: accuracy, or a regression's MAE
    val_loss: float
    val_score: float
    lr: float
    seconds: float
    is_best: bool
    score_name: str = "acc"  # "acc" (accuracy) or "mae" (a regression's mean absolute error)
    old_val: float | None = None  # a continued run: the old run's validation files, scored (forgetting meter)


@dataclass(frozen=True)
class CheckpointSaved:
    path: str
    epoch: int


@dataclass(frozen=True)
class Problem:
    message: str
    files: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Finished:
    status: str  # "completed" or "cancelled"
    run_dir: str
    metrics: dict[str, Any]


@dataclass(frozen=True)
class Failed:
    message: str
    hint: str = ""


Event = (
    RunStarted | ModelReady | Progress | PhaseStarted | BatchEnd | EpochEnd | CheckpointSaved | Problem
    | Finished | Failed
)
Listener = Callable[[Event], None]


def fan_out(*listeners: Listener | None) -> Listener:
    """One listener that forwards to several (CLI printer, run recorder, Qt relay...)."""
    active = [listener for listener in listeners if listener is not None]

    def emit(event: Event) -> None:
        for listener in active:
            listener(event)

    return emit
