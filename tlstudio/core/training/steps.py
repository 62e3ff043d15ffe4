"""One epoch of training and one pass of validation: the inner loops, shared by both batch sources.

Mixed precision where the device has it natively (bf16, else fp16 with a gradient scaler, on CUDA),
channels-last image batches (faster convolutions on CPU and GPU), pause/cancel checked per batch, and a
loss that stops being a finite number stops the run instead of training a broken model.
"""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from tlstudio.core.control import Cancelled, Control
from tlstudio.core.data.loaders import Batch
from tlstudio.core.errors import DataError, DivergedError
from tlstudio.core.models.transfer_model import chunked
from tlstudio.core.training import distributed
from tlstudio.core.training.events import BatchEnd, Listener
from tlstudio.core.training.objective import Classification, Objective


@dataclass(frozen=True)
class StepContext:
    device: torch.device
    autocast_dtype: torch.dtype | None
    loss_fn: nn.Module  # the training loss (label smoothing included); validation loss is plain cross-entropy
    control: Control
    emit: Listener
    objective: Objective = field(default_factory=Classification)  # pools clips and scores: accuracy or MAE
    world: distributed.World = distributed.SINGLE  # the processes training together (one, unless launched)
    micro_batches: int = 1  # gradient accumulation: each batch in this many pieces, one optimiser step

    def inputs(self, batch: Batch) -> torch.Tensor:
        inputs = batch["images"].to(self.device, non_blocking=True)
        return inputs.contiguous(memory_format=torch.channels_last) if inputs.ndim == 4 else inputs

    def autocast(self):
        return torch.autocast(self.device.type, dtype=self.autocast_dtype, enabled=self.autocast_dtype is not None)


def train_epoch(ctx: StepContext, module: nn.Module, batches: Iterator[Batch], steps: int, epoch: int, optimizer,
                scheduler, scaler: torch.amp.GradScaler) -> tuple[float, float]:
    """(mean training loss, the objective's score on the training batches: accuracy or MAE)."""
    module.train()
    total_loss = 0.0
    correct = seen = 0
    together = ctx.world.active
    last: tuple[torch.Tensor, torch.Tensor] | None = None
    for step, batch in enumerate(batches, start=1):
        if not together:
            ctx.control.checkpoint()
        tick = time.perf_counter()
        inputs = ctx.inputs(batch)
        labels = batch["labels"].to(ctx.device, non_blocking=True)
        weight = 1.0
        if together and not len(labels):  # every file of this process's batch was unreadable: the others
            if last is None:              # still wait for its gradients, so it repeats a batch at weight 0
                _go_on_together(ctx, True, epoch, step, unreadable=True)  # or, with none yet, all stop
            (inputs, labels), weight = last, 0.0
        optimizer.zero_grad(set_to_none=True)
        batch_loss, hits = _accumulate(ctx, module, inputs, labels, weight, scaler, epoch, step)
        scaler.step(optimizer)
        scaler.update()
        scheduler.step()
        if weight == 0.0:
            continue
        last = (inputs, labels)
        n = len(labels)
        total_loss += batch_loss * n
        correct += hits
        seen += n
        elapsed = max(time.perf_counter() - tick, 1e-9)
        ctx.emit(BatchEnd(epoch, step, steps, batch_loss, optimizer.param_groups[0]["lr"], n / elapsed))
    total_loss, correct, seen = distributed.total([total_loss, correct, seen], ctx.world, ctx.device)
    if seen == 0:
        raise DataError("No training file could be read.", "Check the files in the folder.")
    return total_loss / seen, correct / seen


def _accumulate(ctx: StepContext, module: nn.Module, inputs: torch.Tensor, labels: torch.Tensor, weight: float,
                scaler: torch.amp.GradScaler, epoch: int, step: int) -> tuple[float, float]:
    """Forward and backward of one batch in `ctx.micro_batches` pieces (activations of one piece at a time),
    the gradients summed as one batch's mean would give; (the batch's mean loss, its summed score).

    Before the last backward (the one that all-reduces across processes) the processes agree whether to go
    on: a process that stopped or diverged alone would leave the others waiting."""
    pieces = list(zip(inputs.chunk(ctx.micro_batches), labels.chunk(ctx.micro_batches), strict=True))
    total = hits = 0.0
    for index, (x, y) in enumerate(pieces):
        final = index == len(pieces) - 1
        quiet = module.no_sync() if not final and hasattr(module, "no_sync") else contextlib.nullcontext()
        with quiet:
            with ctx.autocast():
                outputs = module(x)
                loss = ctx.loss_fn(outputs.float(), y) * (weight * len(y) / len(labels))
            total += float(loss.detach())
            hits += ctx.objective.hits(outputs.detach(), y)
            if final:
                _go_on_together(ctx, math.isfinite(total), epoch, step)
            elif not math.isfinite(total):
                continue  # the last piece's check stops the run (together, every process at the same piece)
            scaler.scale(loss).backward()
    return total / weight if weight else 0.0, hits


def _go_on_together(ctx: StepContext, finite: bool, epoch: int, step: int, unreadable: bool = False) -> None:
    if ctx.world.active:
        stop, diverged, unreadable = distributed.agree(ctx.control.cancelled, not finite, ctx.world, ctx.device,
                                                       unreadable)
        if stop:
            raise Cancelled()
        if unreadable:
            raise DataError(f"At epoch {epoch}, batch {step}, a process had not one readable file in its batch.",
                            "Remove the unreadable files (listed in the run's skipped.tsv) and start again.")
        finite = not diverged
    if not finite:
        raise DivergedError(
            f"Training stopped at epoch {epoch}, batch {step}: the loss is no longer a finite number.",
            "Likely causes: a learning rate too high for this model (try --lr 10x lower), or a damaged file "
            "with extreme values; the weights of the last good epoch were kept.",
        )


@torch.inference_mode()
def validate(ctx: StepContext, module: nn.Module, batches: Iterator[Batch], interruptible: bool = True,
             pausable: bool = False, progress: Callable[[int], None] | None = None,
             ) -> tuple[float, float, dict[str, Any]]:
    """(loss, score, outputs): for classification the loss is plain cross-entropy of each file's
    probabilities (the mean over its windows for long clips) and the score accuracy, the one definition
    shared with metrics.json and Evaluate; for regression the Huber loss and the MAE of each file's value.

    `interruptible`: a stop ends the pass; else it runs to its end, pausing if `pausable`. `progress` gets
    the files scored so far after each batch."""
    module.eval()
    probabilities_all, labels_all, index_all, logits_all, groups_all = [], [], [], [], []
    scored = 0
    for batch in batches:
        if interruptible:
            ctx.control.checkpoint()
        elif pausable:
            ctx.control.wait_while_paused()
        with ctx.autocast():
            logits = chunked(module, ctx.inputs(batch))
        groups = batch.get("groups")
        probabilities_all.append(ctx.objective.pool(logits, groups).cpu())
        labels_all.append(batch["labels"].cpu())
        index_all.append(batch["indices"].cpu())
        logits_all.append(logits.float().cpu())  # kept for the temperature fit after training
        groups_all.extend(groups if groups else [1] * len(batch["labels"]))
        scored += len(batch["labels"]) + len(batch.get("bad") or [])
        if progress:
            progress(scored)
    if not probabilities_all:
        return float("nan"), 0.0, {"probabilities": torch.empty(0), "labels": torch.empty(0, dtype=torch.long),
                                   "indices": torch.empty(0, dtype=torch.long), "logits": torch.empty(0),
                                   "groups": []}
    probabilities = torch.cat(probabilities_all)
    labels = torch.cat(labels_all)
    return (ctx.objective.loss(probabilities, labels), ctx.objective.score(probabilities, labels),
            {"probabilities": probabilities, "labels": labels, "indices": torch.cat(index_all),
             "logits": torch.cat(logits_all), "groups": groups_all})

