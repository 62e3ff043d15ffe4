"""The training loop: phases of epochs of batches, with hooks for everything else (callbacks.py).

It knows the resolved run (resolved.py), a batch source (sources.py) and the ordered callbacks; it honours
pause/cancel between batches through `control`, restarts with smaller micro-batches when memory runs out
(memory.py), and continues a checkpoint exactly (every epoch reseeds from (seed, epoch)).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field, replace
from typing import Any

import torch

from tlstudio.core.control import Cancelled, Control
from tlstudio.core.errors import DivergedError
from tlstudio.core.models import freezing
from tlstudio.core.seeding import derive_seed
from tlstudio.core.store.runs import RunDir
from tlstudio.core.training import checkpoints, heap, memory, steps
from tlstudio.core.training.batching import warmup_cosine
from tlstudio.core.training.callbacks import Callbacks, PhaseInfo, Scores
from tlstudio.core.training.embedding import Embedded
from tlstudio.core.training.events import BatchEnd, Listener, Problem, Progress
from tlstudio.core.training.extraction import embed_splits
from tlstudio.core.training.objective import improves
from tlstudio.core.training.resolved import Phase, ResolvedRun, fresh_model, place, seed_everything
from tlstudio.core.training.skipped import SkippedLog
from tlstudio.core.training.sources import BatchSource, eval_batches, make_source


@dataclass
class LoopState:
    history: list[dict[str, Any]] = field(default_factory=list)
    best: dict[str, Any] = field(default_factory=lambda: {"epoch": 0, "acc": -1.0, "loss": float("inf")})
    epoch: int = 0
    epochs_this_session: int = 0
    elapsed: float = 0.0  # seconds spent in earlier sessions of a resumed run


class Loop:
    def __init__(self, run: ResolvedRun, folder: RunDir, callbacks: Callbacks, control: Control, emit: Listener,
                 skipped: SkippedLog, checkpoint: dict[str, Any] | None = None) -> None:
        self.run, self.folder, self.callbacks, self.control = run, folder, callbacks, control
        self.emit, self.skipped, self.checkpoint = emit, skipped, checkpoint
        self.state = LoopState()
        self.embedded: dict[str, Embedded] = {}
        self.session_start = time.perf_counter()  # reset when fit() begins

    @property
    def seconds(self) -> float:
        """Training time of every session of this run so far."""
        return self.state.elapsed + time.perf_counter() - self.session_start

    def fit(self) -> str:
        """Train every phase; "completed" or "cancelled" (a DivergedError or a failure propagates, after
        after_fit("diverged" or "failed"))."""
        self.session_start = time.perf_counter()  # the training clock: set-up and the header are not in it
        status = "completed"
        try:
            self._fit_with_memory_retry()
        except Cancelled:
            status = "cancelled"
            self.callbacks("on_cancel", self)
        except DivergedError:
            self.callbacks("after_fit", self, "diverged")
            raise
        except BaseException:
            self.callbacks("after_fit", self, "failed")
            raise
        self.callbacks("after_fit", self, status)
        return status

    def embed(self) -> dict[str, Embedded]:
        """The fast path's embeddings of every split (made once, kept for the finisher)."""
        self.embedded = embed_splits(self.run, self.embedded, self.control, self.emit, self.skipped)
        return self.embedded

    def source(self, unfreeze: int) -> BatchSource:
        """Freeze all but the top `unfreeze` blocks and give the batches that train them."""
        freezing.apply(self.run.model, unfreeze)
        return make_source(self.run, self.embedded, self.skipped.note, lambda: self.control.cancelled)

    def step_context(self) -> steps.StepContext:
        run = self.run
        return steps.StepContext(run.device, run.autocast_dtype, run.loss_fn, self.control, self._after_batch,
                                 run.objective, run.together.world, run.config.accumulate)

    def old_score(self) -> float:
        """The forgetting meter: the continued run's validation files, scored with the model as it is now."""
        module, batches, _ = eval_batches(self.run, self.embedded, "old_val", self.skipped.note,
                                          stopping=lambda: self.control.cancelled)
        return steps.validate(self.step_context(), module, batches, interruptible=False,  # as validation: a stop
                              pausable=self.run.together.interruptible)[1]       # waits for the epoch's end

    # -- inside ---------------------------------------------------------------------------------------------
    def _after_batch(self, event: Any) -> None:
        if isinstance(event, BatchEnd):
            self.callbacks("after_batch", self, event)
        else:
            self.emit(event)

    def _fit_with_memory_retry(self) -> None:
        while True:
            try:
                self.callbacks("before_fit", self)  # again after a restart: the loop starts over
                self._restore()
                self._train_phases()
                return
            except (torch.OutOfMemoryError, RuntimeError) as exc:
                if not memory.is_out_of_memory(exc):
                    raise
                self.emit(Problem(memory.shrink(self.run, exc)))
            # out of the handler, the failed attempt's frames and tensors are gone; the old model leaves the
            # device before the new one arrives (the point of the restart is to need less memory)
            self.embedded.clear()
            fresh = fresh_model(self.run.entry, self.run.config, self.run.spec, self.run.continuation, self.emit)
            self.run = replace(self.run, model=fresh)
            memory.release(self.run.device)
            place(fresh, self.run)
            self.state = LoopState()
            self.checkpoint = None  # start over with the smaller batch: a clean schedule
            self.folder.file(checkpoints.BEST_FILE).unlink(missing_ok=True)

    def _restore(self) -> None:
        """Put back a checkpoint's model, history and best-so-far (optimiser state comes back per phase)."""
        checkpoint = self.checkpoint
        if checkpoint is None:
            return
        config = self.run.config
        self.run.model.load_state_dict(checkpoint["model_state"], strict=False)
        config.batch_size = int(checkpoint.get("batch_size", config.batch_size))
        config.accumulate = int(checkpoint.get("accumulate", config.accumulate))
        self.state.history = list(checkpoint["history"])
        self.state.epoch = int(checkpoint["epoch"])
        self.state.best = dict(checkpoint["best"])
        self.state.elapsed = float(checkpoint.get("elapsed", 0.0))

    def _train_phases(self) -> None:
        done = self.checkpoint["epoch"] if self.checkpoint else 0
        if self.run.fast_path:
            self.embed()
            heap.trim()  # the backbone's activations are freed: the head's epochs need a fraction of that
        last = 0
        for index, phase in enumerate(self.run.phases):
            first, last = last + 1, last + phase.epochs
            if done >= last:
                continue  # finished before the interruption; its weights came back with the checkpoint
            self._train_phase(index, phase, first, last, resume=first <= done)

    def _train_phase(self, index: int, phase: Phase, first: int, last: int, resume: bool) -> None:
        run, config = self.run, self.run.config
        source = self.source(phase.unfreeze)
        plan = freezing.plan(run.model, phase.unfreeze)
        optimizer = torch.optim.AdamW(freezing.param_groups(run.model, config.lr, config.lr * config.backbone_lr_factor,
                                                            config.weight_decay))
        scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, warmup_cosine(max(1, phase.epochs * source.steps)))
        scaler = torch.amp.GradScaler("cuda", enabled=run.autocast_dtype == torch.float16)
        if resume:
            assert self.checkpoint is not None
            checkpoints.restore_optimisation(self.checkpoint, optimizer, scheduler, scaler)
            first = self.checkpoint["epoch"] + 1
        self.callbacks("before_phase", self, PhaseInfo(index, phase.name, first, last, plan.trainable_blocks,
                                                       plan.trainable_params))
        context = self.step_context()
        trainable = run.together.wrap(source.module)  # per phase: its own parameters
        try:
            for epoch in range(first, last + 1):
                tick = time.perf_counter()
                seed_everything(derive_seed(config.seed, "epoch", epoch))  # dropout, SpecAugment: per epoch
                train_loss, train_score = steps.train_epoch(context, trainable, source.train_batches(epoch),
                                                            source.steps, epoch, optimizer, scheduler, scaler)
                val_loss, val_score = self._validate(context, source, epoch)
                scores = Scores(train_loss, train_score, val_loss, val_score)
                self.callbacks("after_validate", self, scores)
                self._end_epoch(epoch, index, phase, scores, time.perf_counter() - tick, source,
                                (optimizer, scheduler, scaler))
                if run.together.interruptible and epoch < config.epochs:  # a stop asked for during validation:
                    self.control.checkpoint()  # the epoch is saved now (after the last one, the run completes)
        finally:
            source.close()

    def _validate(self, context: steps.StepContext, source: BatchSource, epoch: int) -> tuple[float, float]:
        """(loss, score) over every validation file; together, each process scores its share of the files
        (cached embeddings are everyone's: no share there) and the scores come from all the shares.

        A stop during the pass lets it finish (a pause pauses it), so the epoch's training is kept: the loop
        stops right after the epoch is saved."""
        together = self.run.together
        total = len(self.embedded["val"].kept) if self.run.fast_path else len(together.mine(self.run.spec.val))
        stage = f"validating epoch {epoch}"
        self.emit(Progress(stage, 0, total))
        loss, score, outputs = steps.validate(context, source.module, source.val_batches(), interruptible=False,
                                              pausable=together.interruptible,
                                              progress=lambda done: self.emit(Progress(stage, done, total)))
        self.emit(Progress(stage, total, total))  # batches whose every file failed are dropped, never counted
        if self.run.fast_path or not together.active:
            return loss, score
        pooled = together.pooled_outputs(outputs, together.share(len(self.run.spec.val)))
        if pooled is None:
            return float("nan"), 0.0
        objective = self.run.objective
        return objective.loss(*pooled), objective.score(*pooled)

    def _chosen(self, scores: Scores) -> float:
        """The score the best epoch is chosen on: a continued run's over the old and new validation files
        together (each file counts once)."""
        old = scores.extra.get("old_val")
        if old is None or self.run.continuation is None:
            return scores.val_score
        n_new, n_old = len(self.run.spec.val), len(self.run.continuation.old_val)
        return (scores.val_score * n_new + old * n_old) / max(n_new + n_old, 1)

    def _end_epoch(self, epoch: int, phase_index: int, phase: Phase, scores: Scores, seconds: float,
                   source: BatchSource, optimisation: tuple[Any, Any, Any]) -> None:
        state, name = self.state, self.run.objective.score_name
        optimizer, scheduler, scaler = optimisation
        chosen = self._chosen(scores)
        is_best = improves(self.run.objective, chosen, scores.val_loss, state.best)
        if is_best:
            state.best = {"epoch": epoch, name: chosen, "loss": scores.val_loss}
        row = {"epoch": epoch, "phase": phase.name, "train_loss": round(scores.train_loss, 6),
               f"train_{name}": round(scores.train_score, 6), "val_loss": round(scores.val_loss, 6),
               f"val_{name}": round(scores.val_score, 6), "lr": optimizer.param_groups[0]["lr"],
               "seconds": round(seconds, 4)}
        if "old_val" in scores.extra:
            row[f"old_val_{name}"] = round(scores.extra["old_val"], 6)
        state.history.append(row)
        state.epoch = epoch
        state.epochs_this_session += 1
        record = checkpoints.EpochRecord(
            epoch, phase_index, row, is_best, source.module, source.prefix, optimizer, scheduler, scaler,
            state.history, state.best, self.run.config.batch_size, self.seconds, self.run.config.accumulate,
            scores, seconds)
        self.callbacks("after_epoch", self, record)
