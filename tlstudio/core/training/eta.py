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


def at_rate(elapsed: float, done: int, left: int) -> float:
    """Seconds for `left` more steps at the rate of the `done` steps that took `elapsed` (Evaluate, Try, the scan,
    the map and the depth probe all estimate their time left this way)."""
    return elapsed / max(done, 1) * left


def clock(seconds: float) -> str:
    """'m:ss' below an hour, then '1h05'."""
    seconds = max(0, int(seconds))
    return f"{seconds // 60}:{seconds % 60:02d}" if seconds < 3600 else f"{seconds // 3600}h{seconds // 60 % 60:02d}"


def from_scratch_seconds(metrics: dict, epochs: int) -> tuple[float, bool]:
    """(seconds, whether that is a floor) to train a run's network from random weights for `epochs`, estimated
    from the run's own metrics.json: every file goes forward and backward through every block each epoch.

    A frozen run spent its time on one forward pass over its files (its head's epochs cost next to nothing),
    so a file costs train_seconds / files and a scratch epoch about 3 passes over the training files plus one
    over validation; rows found in the cache cost nothing, which makes that a floor. A fine-tuned run's epoch
    already went through the network: all blocks training cost about half again as much."""
    seconds = float(metrics.get("train_seconds") or 0.0)
    sizes = metrics.get("sizes") or {}
    train, val = int(sizes.get("train") or 0), int(sizes.get("val") or 0)
    if metrics.get("fast_path"):
        per_file = seconds / max(train + val + int(sizes.get("test") or 0), 1)
        return epochs * per_file * (3 * train + val), True
    return epochs * 1.5 * seconds / max(int(metrics.get("epochs") or 1), 1), False
