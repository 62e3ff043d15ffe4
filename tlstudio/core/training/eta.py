"""Time left in a run, from the current epoch's pace: shared by the console bar and the Train page."""

from __future__ import annotations

from tlstudio.core.training.events import BatchEnd


def epoch_fraction(batch: BatchEnd) -> float:
    return batch.step / max(batch.steps_per_epoch, 1)


def seconds_left(batch: BatchEnd, epoch_elapsed: float, epochs: int) -> float:
    """The rest of this epoch plus the epochs still to come, at this epoch's pace so far."""
    fraction = epoch_fraction(batch)
    per_epoch = epoch_elapsed / max(fraction, 1e-6)
    return per_epoch * (1 - fraction) + per_epoch * (epochs - batch.epoch)


def clock(seconds: float) -> str:
    """'m:ss' below an hour, then '1h05'."""
    seconds = max(0, int(seconds))
    return f"{seconds // 60}:{seconds % 60:02d}" if seconds < 3600 else f"{seconds // 3600}h{seconds // 60 % 60:02d}"
