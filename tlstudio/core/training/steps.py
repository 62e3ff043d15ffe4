"""One epoch of training and one pass of validation: the inner loops, shared by both training paths.

Mixed precision where the device supports it (bf16, or fp16 with a gradient scaler, on CUDA),
channels-last image batches (faster convolutions on CPU and GPU), pause/cancel checked per batch.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from tlstudio.core.control import Control
from tlstudio.core.data.audio_clips import pool_groups
from tlstudio.core.data.loaders import Batch
from tlstudio.core.errors import DataError
from tlstudio.core.training.events import BatchEnd, Listener


@dataclass(frozen=True)
class StepContext:
    device: torch.device
    autocast_dtype: torch.dtype | None
    loss_fn: nn.Module
    control: Control
    emit: Listener

    def inputs(self, batch: Batch) -> torch.Tensor:
        inputs = batch["images"].to(self.device, non_blocking=True)
        return inputs.contiguous(memory_format=torch.channels_last) if inputs.ndim == 4 else inputs

    def autocast(self):
        return torch.autocast(self.device.type, dtype=self.autocast_dtype, enabled=self.autocast_dtype is not None)


def train_epoch(ctx: StepContext, module: nn.Module, batches: Iterator[Batch], steps: int, epoch: int, optimizer,
                scheduler) -> tuple[float, float]:
    module.train()
    scaler = torch.amp.GradScaler("cuda", enabled=ctx.autocast_dtype == torch.float16)
    total_loss = 0.0
    correct = seen = 0
    for step, batch in enumerate(batches, start=1):
        ctx.control.checkpoint()
        tick = time.perf_counter()
        inputs = ctx.inputs(batch)
        labels = batch["labels"].to(ctx.device, non_blocking=True)
        with ctx.autocast():
            logits = module(inputs)
            loss = ctx.loss_fn(logits.float(), labels)
        optimizer.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()
        scaler.step(optimizer)
        scaler.update()
        scheduler.step()
        n = len(labels)
        batch_loss = float(loss.detach())
        total_loss += batch_loss * n
        correct += int((logits.argmax(dim=1) == labels).sum())
        seen += n
        elapsed = max(time.perf_counter() - tick, 1e-9)
        ctx.emit(BatchEnd(epoch, step, steps, batch_loss, optimizer.param_groups[0]["lr"], n / elapsed))
    if seen == 0:
        raise DataError("No training file could be read.", "Check the files in the folder.")
    return total_loss / seen, correct / seen


@torch.inference_mode()
def validate(ctx: StepContext, module: nn.Module, batches: Iterator[Batch],
             interruptible: bool = True) -> tuple[float, float, dict[str, Any]]:
    module.eval()
    logits_all, labels_all, index_all = [], [], []
    for batch in batches:
        if interruptible:
            ctx.control.checkpoint()
        with ctx.autocast():
            logits = pool_groups(module(ctx.inputs(batch)).float(), batch.get("groups"))
        logits_all.append(logits.cpu())
        labels_all.append(batch["labels"].cpu())
        index_all.append(batch["indices"].cpu())
    if not logits_all:
        return float("nan"), 0.0, {"logits": torch.empty(0), "labels": torch.empty(0, dtype=torch.long),
                                   "indices": torch.empty(0, dtype=torch.long)}
    logits = torch.cat(logits_all)
    labels = torch.cat(labels_all)
    loss = float(ctx.loss_fn(logits, labels))
    acc = float((logits.argmax(dim=1) == labels).double().mean())
    return loss, acc, {"logits": logits, "labels": labels, "indices": torch.cat(index_all)}
