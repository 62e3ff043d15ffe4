"""What survives an epoch: the checkpoint, the best weights and the history (written by callbacks.py).

Order matters at each epoch end: best weights (when they improved), then the checkpoint, then
history.csv. A kill between two writes is repaired by the resume itself, which replays the epoch after
the last checkpoint and, being exact, writes the same best weights again.

The checkpoint holds what an epoch cannot be recomputed from: the trainable weights, the optimiser,
schedule and gradient-scaler state, the history and the best-so-far. Random numbers need no carrying:
every epoch reseeds from (seed, epoch) (see seeding.py); their states are saved only to check that.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from tlstudio.core.errors import RunError
from tlstudio.core.store.runs import RunDir

FORMAT = "tlstudio-checkpoint"
VERSION = 2
BEST_FILE = "best.pt"


@dataclass
class EpochRecord:
    """Everything an epoch-end listener may need; `row` is the history line."""

    epoch: int
    phase_index: int
    row: dict[str, Any]
    is_best: bool
    module: nn.Module
    prefix: str
    optimizer: torch.optim.Optimizer
    scheduler: Any
    scaler: torch.amp.GradScaler
    history: list[dict[str, Any]]
    best: dict[str, Any]
    batch_size: int
    elapsed: float
    accumulate: int = 1
    scores: Any = None  # the epoch's callbacks.Scores, unrounded (the row holds them rounded)
    seconds: float = 0.0


def trainable_state(record: EpochRecord) -> dict[str, torch.Tensor]:
    return {record.prefix + k: v.detach().to("cpu", copy=True) for k, v in record.module.state_dict().items()}


def save_best(run: RunDir, record: EpochRecord) -> None:
    """best.pt, only when validation improved."""
    if record.is_best:
        run.save_torch(BEST_FILE, {"epoch": record.epoch, "state": trainable_state(record)})


def save_checkpoint(run: RunDir, record: EpochRecord) -> None:
    run.save_torch("checkpoint.pt", {
        "format": FORMAT,
        "version": VERSION,
        "epoch": record.epoch,
        "phase_index": record.phase_index,
        "model_state": trainable_state(record),
        "optimizer": record.optimizer.state_dict(),
        "scheduler": record.scheduler.state_dict(),
        "scaler": record.scaler.state_dict(),
        "rng": {"torch": torch.get_rng_state(), "python": random.getstate(),
                "numpy": np.random.get_state()[1].tolist()},
        "history": record.history,
        "best": record.best,
        "batch_size": record.batch_size,
        "accumulate": record.accumulate,
        "elapsed": record.elapsed,
    })


def load_checkpoint(run: RunDir) -> dict[str, Any] | None:
    if not run.file("checkpoint.pt").is_file():
        return None
    checkpoint = run.load_torch("checkpoint.pt")
    if not isinstance(checkpoint, dict) or checkpoint.get("format") != FORMAT:
        raise RunError(f"{run.file('checkpoint.pt')} is not a studio checkpoint.")
    if checkpoint.get("version") != VERSION:
        raise RunError(f"{run.file('checkpoint.pt')} was written by another version of the studio.",
                       "Start a new run; this one cannot be resumed exactly.")
    return checkpoint


def load_best(run: RunDir) -> dict[str, torch.Tensor] | None:
    if not run.file(BEST_FILE).is_file():
        return None
    return run.load_torch(BEST_FILE)["state"]


def restore_optimisation(checkpoint: dict[str, Any], optimizer, scheduler, scaler: torch.amp.GradScaler) -> None:
    optimizer.load_state_dict(checkpoint["optimizer"])
    scheduler.load_state_dict(checkpoint["scheduler"])
    scaler.load_state_dict(checkpoint["scaler"])
