"""The loop's hooks and the callbacks that make a run more than a loop (fastai's Learner, Lightning's callbacks).

The loop (loop.py) calls, in this order:

    before_fit                          (again after an out-of-memory restart: the loop starts over)
      before_phase                      (each phase: head first, then the unfrozen blocks)
        after_batch                     (each training batch, with its BatchEnd)
        after_validate                  (each epoch: the scores; a callback may add to them)
        after_epoch                     (each epoch: the EpochRecord, history row included)
    on_cancel                           (a stop: called before after_fit)
    after_fit                           (completed, cancelled, diverged or failed; the finisher runs after it)

Everything else is a callback: the history, the checkpoint and the best weights (checkpoints.py writes
and reads their files), the forgetting meter, the relay of events to whoever listens. Callbacks run in
list order; a new behaviour is a new class here or in a test, never an edit of the loop.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from tlstudio.core.store.runs import RunDir
from tlstudio.core.training import checkpoints
from tlstudio.core.training.events import BatchEnd, CheckpointSaved, EpochEnd, Listener, PhaseStarted

if TYPE_CHECKING:
    from tlstudio.core.training.loop import Loop

HOOKS = ("before_fit", "before_phase", "after_batch", "after_validate", "after_epoch", "on_cancel", "after_fit")


@dataclass
class Scores:
    """An epoch's scores; `score` is accuracy or MAE (the objective's), `extra` what callbacks add."""

    train_loss: float
    train_score: float
    val_loss: float
    val_score: float
    extra: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class PhaseInfo:
    index: int
    name: str
    first_epoch: int
    last_epoch: int
    trainable_blocks: list[str]
    trainable_params: int


class Callback:
    """Override the hooks you need; each gets the loop (its resolved run, state and control) first."""

    def before_fit(self, loop: Loop) -> None: ...
    def before_phase(self, loop: Loop, phase: PhaseInfo) -> None: ...
    def after_batch(self, loop: Loop, batch: BatchEnd) -> None: ...
    def after_validate(self, loop: Loop, scores: Scores) -> None: ...
    def after_epoch(self, loop: Loop, record: checkpoints.EpochRecord) -> None: ...
    def after_fit(self, loop: Loop, status: str) -> None: ...
    def on_cancel(self, loop: Loop) -> None: ...


class Callbacks:
    """An ordered list of callbacks, called hook by hook."""

    def __init__(self, callbacks: Sequence[Callback]) -> None:
        self.items = list(callbacks)

    def __call__(self, hook: str, loop: Loop, *args: Any) -> None:
        assert hook in HOOKS, hook
        for callback in self.items:
            getattr(callback, hook)(loop, *args)


class BestWeights(Callback):
    """best.pt, written only when validation improved (not a copy in every checkpoint)."""

    def __init__(self, run: RunDir) -> None:
        self.run = run

    def after_epoch(self, loop: Loop, record: checkpoints.EpochRecord) -> None:
        checkpoints.save_best(self.run, record)


class Checkpointer(Callback):
    """checkpoint.pt: what a resume needs to go on exactly (after best.pt: a kill between is repaired)."""

    def __init__(self, run: RunDir) -> None:
        self.run = run

    def after_epoch(self, loop: Loop, record: checkpoints.EpochRecord) -> None:
        checkpoints.save_checkpoint(self.run, record)


class HistoryWriter(Callback):
    def __init__(self, run: RunDir) -> None:
        self.run = run

    def after_epoch(self, loop: Loop, record: checkpoints.EpochRecord) -> None:
        self.run.write_history(record.history)


class ForgettingMeter(Callback):
    """A continued run: the old run's validation files scored every epoch; the best epoch is then chosen on
    the old and the new validation files together (core/training/continuation.py)."""

    def after_validate(self, loop: Loop, scores: Scores) -> None:
        scores.extra["old_val"] = loop.old_score()


class EventRelay(Callback):
    """The loop's progress as events (events.py) for the CLI's printer, the window's worker or a test."""

    def __init__(self, emit: Listener, checkpoint_file: str) -> None:
        self.emit, self.checkpoint_file = emit, checkpoint_file

    def before_phase(self, loop: Loop, phase: PhaseInfo) -> None:
        self.emit(PhaseStarted(phase.name, phase.first_epoch, phase.last_epoch, phase.trainable_blocks,
                               phase.trainable_params))

    def after_batch(self, loop: Loop, batch: BatchEnd) -> None:
        self.emit(batch)

    def after_epoch(self, loop: Loop, record: checkpoints.EpochRecord) -> None:
        scores, name = record.scores, loop.run.objective.score_name
        self.emit(CheckpointSaved(self.checkpoint_file, record.epoch))
        self.emit(EpochEnd(record.epoch, loop.run.config.epochs, scores.train_loss, scores.train_score,
                           scores.val_loss, scores.val_score, record.row["lr"], record.seconds, record.is_best, name,
                           scores.extra.get("old_val")))


def standard(run: RunDir, emit: Listener, writes: bool, continued: bool) -> list[Callback]:
    """The callbacks of every run, in their order: files first (best, checkpoint, history), then the events, so
    a listener told of an epoch finds it on disk."""
    files: list[Callback] = [BestWeights(run), Checkpointer(run), HistoryWriter(run)] if writes else []
    meter: list[Callback] = [ForgettingMeter()] if continued else []
    return [*meter, *files, EventRelay(emit, str(run.file("checkpoint.pt")))]
