"""The one training loop behind the GUI, the CLI and the tests.

It emits events (see events.py) and never prints; it honours pause/cancel between batches; it writes
the run folder as it goes so a crash loses at most the current epoch.

Two ways to train, chosen by the config:
- fast path (feature extraction, no augmentation): the backbone embeds each image once (cached on disk),
  then only the head trains, on the embeddings; extra epochs cost almost nothing;
- full path: images flow through the network every epoch, with augmentation, the top K blocks unfrozen
  at a lower learning rate; optionally a two-phase schedule (head first, then unfreeze).
"""

from __future__ import annotations

import logging
import math
import os
import random
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader

from tlstudio import __version__
from tlstudio.core import devices, freezing
from tlstudio.core.backbones import BackboneEntry, Preprocess, get_entry
from tlstudio.core.config import TrainConfig
from tlstudio.core.control import Cancelled, Control
from tlstudio.core.data import DatasetSpec, Sample, SkippedFile
from tlstudio.core.errors import DataError
from tlstudio.core.evaluate import report
from tlstudio.core.events import (
    BatchEnd,
    CheckpointSaved,
    EpochEnd,
    Finished,
    Listener,
    ModelReady,
    PhaseStarted,
    Problem,
    Progress,
    RunStarted,
)
from tlstudio.core.features import FeatureCache, bucket_key, embed
from tlstudio.core.media.image_dataset import ImageFiles, collate_skipping_bad
from tlstudio.core.media.image_transforms import eval_transform, train_transform
from tlstudio.core.model import TransferModel, build_model
from tlstudio.core.paths import features_cache_dir
from tlstudio.core.runs import RunDir, model_payload
from tlstudio.core.weights import pretrained_state, sha256_of

log = logging.getLogger(__name__)

Batch = dict[str, Any]


@dataclass
class Phase:
    name: str
    unfreeze: int
    epochs: int


@dataclass
class _State:
    history: list[dict[str, Any]] = field(default_factory=list)
    best_acc: float = -1.0
    best_loss: float = float("inf")
    best_epoch: int = 0
    best_state: dict[str, torch.Tensor] | None = None
    skipped: list[SkippedFile] = field(default_factory=list)
    epoch: int = 0


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def _autocast_dtype(device: torch.device, amp: bool) -> torch.dtype | None:
    if not amp or device.type != "cuda":
        return None
    return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16


def warmup_cosine(total_steps: int, warmup_share: float = 0.1, floor: float = 0.01):
    """Linear warm-up then cosine decay to `floor` x the peak; works for any number of steps, even 1."""
    warmup = max(1, round(total_steps * warmup_share))

    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        progress = min(1.0, (step - warmup) / max(1, total_steps - warmup))
        return floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * progress))

    return factor


def _auto_workers(n_samples: int, requested: int) -> int:
    if requested >= 0:
        return requested
    cpus = os.cpu_count() or 1
    # Spawned workers cost seconds to start; on small data or two cores the main process decodes faster.
    if cpus <= 2 or n_samples < 1000:
        return 0
    return min(4, cpus - 1)


def _loader(samples: Sequence[Sample], transform: Any, pre: Preprocess, batch_size: int, workers: int,
            shuffle: bool, device: torch.device, seed: int, drop_last: bool = False) -> DataLoader:
    kwargs: dict[str, Any] = {}
    if workers > 0:
        kwargs.update(multiprocessing_context="spawn", persistent_workers=True, prefetch_factor=4)
    generator = torch.Generator().manual_seed(seed)
    return DataLoader(
        ImageFiles(samples, transform, pre.resize),
        batch_size=batch_size,
        shuffle=shuffle,
        num_workers=workers,
        collate_fn=collate_skipping_bad,
        pin_memory=device.type == "cuda",
        drop_last=drop_last,
        generator=generator,
        **kwargs,
    )


def _tensor_batches(features: torch.Tensor, labels: torch.Tensor, batch_size: int,
                    generator: torch.Generator | None) -> Iterator[Batch]:
    n = len(labels)
    order = torch.randperm(n, generator=generator) if generator is not None else torch.arange(n)
    for start in range(0, n, batch_size):
        index = order[start : start + batch_size]
        yield {"images": features[index], "labels": labels[index], "indices": index, "bad": []}


class Trainer:
    """One run: holds the model and the state of the loop; `run()` does the work."""

    def __init__(self, spec: DatasetSpec, config: TrainConfig, run: RunDir, emit: Listener,
                 control: Control | None = None) -> None:
        self.spec = spec
        self.config = config
        self.run_dir = run
        self.emit = emit
        self.control = control or Control()
        self.state = _State(skipped=list(spec.skipped))
        self.entry: BackboneEntry = get_entry(config.backbone)

    # -- set-up ---------------------------------------------------------------------------------------
    def _prepare(self) -> None:
        config, spec = self.config, self.spec
        config.validate()
        if spec.modality != "image":
            raise DataError(
                "This folder holds sound files; training on sound is not available in this version yet.",
                "Use a folder of images for now.",
            )
        if not spec.val:
            raise DataError(
                "There are no validation files, so the run could not be judged.",
                "Use a validation share above 0 (--val-split 0.2) or add a val/ folder.",
            )
        seed_everything(config.seed)
        self.device = torch.device(devices.resolve(config.device))
        self.autocast_dtype = _autocast_dtype(self.device, config.amp)
        self.preprocess = self.entry.preprocess()
        backbone_state = pretrained_state(
            self.entry, config.pretrained,
            progress=lambda done, total: self.emit(Progress("download weights", done, total)),
        )
        self.weights_id = self._weights_id()
        self.model: TransferModel = build_model(self.entry, len(spec.classes), config.head, backbone_state)
        del backbone_state
        self.unfreeze = freezing.parse_unfreeze(config.unfreeze, len(self.model.blocks))
        self.augment = config.resolved_augment(self.unfreeze)
        self.fast_path = self.unfreeze == 0 and self.augment == "none" and config.schedule == "one-phase"
        if config.schedule == "two-phase":
            self.phases = [
                Phase("head", 0, config.warmup_epochs),
                Phase("fine-tune", self.unfreeze, config.epochs - config.warmup_epochs),
            ]
        else:
            self.phases = [Phase("train", self.unfreeze, config.epochs)]
        self.model.to(self.device, memory_format=torch.channels_last)
        self.loss_fn = nn.CrossEntropyLoss(label_smoothing=config.label_smoothing)

    def _weights_id(self) -> str:
        source = self.config.pretrained
        if source == "imagenet":
            return self.entry.weights_filename
        if source == "none":
            return f"random-seed{self.config.seed}"
        return f"file-{sha256_of(source)[:16]}"

    def _write_run_header(self) -> None:
        resolved = {
            **self.config.to_dict(),
            "resolved": {
                "device": str(self.device),
                "unfreeze_blocks": self.unfreeze,
                "augment": self.augment,
                "fast_path": self.fast_path,
                "weights": self.weights_id,
                "amp": str(self.autocast_dtype).replace("torch.", "") if self.autocast_dtype else "off",
            },
            "tlstudio_version": __version__,
            "torch_version": torch.__version__,
        }
        self.run_dir.write_json("config.json", resolved)
        self.run_dir.write_json("labels.json", {"classes": self.spec.classes,
                                                "preprocess": self.preprocess.to_dict(),
                                                "modality": self.spec.modality})
        self._write_dataset()

    def _write_dataset(self) -> None:
        self.run_dir.write_json("dataset.json", {**self.spec.to_dict(),
                                                 "skipped": [vars(s) for s in self.state.skipped]})

    # -- data -----------------------------------------------------------------------------------------
    def _eval_loader(self, samples: Sequence[Sample], workers: int) -> DataLoader:
        return _loader(samples, eval_transform(self.preprocess), self.preprocess, self.config.batch_size,
                       workers, False, self.device, self.config.seed)

    def _note_bad(self, samples: Sequence[Sample], bad: list[tuple[int, str]]) -> None:
        if not bad:
            return
        files = [samples[index].path for index, _ in bad]
        self.state.skipped.extend(SkippedFile(samples[index].path, reason) for index, reason in bad)
        self.emit(Problem(f"{len(bad)} file(s) could not be decoded and were skipped.", files))
        self._write_dataset()

    # -- the loop -------------------------------------------------------------------------------------
    def run(self) -> dict[str, Any]:
        self._prepare()
        self._write_run_header()
        plan = freezing.plan(self.model, self.unfreeze)
        self.emit(RunStarted(str(self.run_dir.path), self.config.to_dict(), self.spec.sizes(), self.spec.classes))
        self.emit(ModelReady(self.entry.name, str(self.device), plan.trainable_blocks, plan.frozen_blocks,
                             plan.trainable_params, plan.total_params, self.fast_path))
        started = time.perf_counter()
        status = "completed"
        try:
            if self.fast_path:
                self._run_fast()
            else:
                self._run_full()
        except Cancelled:
            status = "cancelled"
            if not self.state.history:
                self.emit(Finished("cancelled", str(self.run_dir.path), {}))
                return {"status": "cancelled"}
        seconds = time.perf_counter() - started
        metrics = self._finish(status, seconds)
        self.emit(Finished(status, str(self.run_dir.path), metrics))
        return metrics

    def _optimizer(self, module: nn.Module, phase: Phase, steps_per_epoch: int):
        config = self.config
        if isinstance(module, TransferModel):
            groups = freezing.param_groups(module, config.lr, config.lr * config.backbone_lr_factor,
                                           config.weight_decay)
        else:
            groups = [{"params": [p for p in module.parameters() if p.requires_grad], "lr": config.lr,
                       "weight_decay": config.weight_decay, "role": "head"}]
        optimizer = torch.optim.AdamW(groups)
        total = max(1, steps_per_epoch * phase.epochs)
        scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, warmup_cosine(total))
        return optimizer, scheduler

    def _run_fast(self) -> None:
        config = self.config
        cache = FeatureCache(features_cache_dir() if config.cache_features else None)
        bucket = bucket_key(self.entry.name, self.weights_id, self.preprocess)
        workers = _auto_workers(len(self.spec.train) + len(self.spec.val), config.workers)
        embedded = {}
        for split in ("train", "val"):
            samples = getattr(self.spec, split)
            result = embed(
                self.model, samples, lambda subset: self._eval_loader(subset, workers), self.device, cache,
                bucket, self.control,
                progress=lambda done, total, split=split: self.emit(Progress(f"embedding {split}", done, total)),
                autocast_dtype=self.autocast_dtype,
            )
            self._note_bad(samples, result.bad)
            embedded[split] = result
        train, val = embedded["train"], embedded["val"]
        self._val_embedded = val
        if len(train.labels) == 0:
            raise DataError("No training file could be decoded.", "Check the files in the folder.")
        self.val_paths = [self.spec.val[i].path for i in val.kept]
        head = self.model.head
        freezing.apply(self.model, 0)
        phase = self.phases[0]
        steps = -(-len(train.labels) // config.batch_size)
        optimizer, scheduler = self._optimizer(head, phase, steps)
        self.emit(PhaseStarted(phase.name, 1, phase.epochs, [], sum(p.numel() for p in head.parameters())))
        generator = torch.Generator().manual_seed(config.seed)
        train_x, train_y = train.features.to(self.device), train.labels.to(self.device)
        val_x, val_y = val.features.to(self.device), val.labels.to(self.device)
        for _ in range(phase.epochs):
            self.state.epoch += 1
            tick = time.perf_counter()
            train_loss, train_acc = self._train_epoch(
                head, _tensor_batches(train_x, train_y, config.batch_size, generator), steps,
                optimizer, scheduler, channels_last=False,
            )
            val_loss, val_acc, _ = self._validate(head, _tensor_batches(val_x, val_y, 1024, None))
            self._end_epoch(phase, train_loss, train_acc, val_loss, val_acc, scheduler, optimizer, tick,
                            trainable=head, prefix="head.")

    def _run_full(self) -> None:
        config = self.config
        workers = _auto_workers(len(self.spec.train), config.workers)
        train_loader = _loader(
            self.spec.train, train_transform(self.preprocess, self.augment), self.preprocess, config.batch_size,
            workers, True, self.device, config.seed, drop_last=len(self.spec.train) > config.batch_size,
        )
        val_loader = self._eval_loader(self.spec.val, workers)
        first = 1
        for phase in self.phases:
            plan = freezing.apply(self.model, phase.unfreeze)
            steps = len(train_loader)
            optimizer, scheduler = self._optimizer(self.model, phase, steps)
            self.emit(PhaseStarted(phase.name, first, first + phase.epochs - 1, plan.trainable_blocks,
                                   plan.trainable_params))
            for _ in range(phase.epochs):
                self.state.epoch += 1
                tick = time.perf_counter()
                train_loss, train_acc = self._train_epoch(self.model, self._image_batches(train_loader,
                                                          self.spec.train), steps, optimizer, scheduler)
                val_loss, val_acc, outputs = self._validate(self.model,
                                                            self._image_batches(val_loader, self.spec.val))
                self.val_paths = [self.spec.val[i].path for i in outputs["indices"].tolist()]
                self._end_epoch(phase, train_loss, train_acc, val_loss, val_acc, scheduler, optimizer, tick,
                                trainable=self.model, prefix="")
            first += phase.epochs

    def _image_batches(self, loader: DataLoader, samples: Sequence[Sample]) -> Iterator[Batch]:
        known_bad = {skipped.path for skipped in self.state.skipped}
        reported = {i for i, sample in enumerate(samples) if sample.path in known_bad}
        for batch in loader:
            fresh = [(i, r) for i, r in batch["bad"] if i not in reported]
            if fresh:
                reported.update(i for i, _ in fresh)
                self._note_bad(samples, fresh)
            if batch["labels"].numel():
                yield batch

    def _train_epoch(self, module: nn.Module, batches: Iterator[Batch], steps: int, optimizer, scheduler,
                     channels_last: bool = True) -> tuple[float, float]:
        module.train()
        scaler = torch.amp.GradScaler("cuda", enabled=self.autocast_dtype == torch.float16)
        total_loss = 0.0
        correct = seen = 0
        epoch = self.state.epoch
        for step, batch in enumerate(batches, start=1):
            self.control.checkpoint()
            tick = time.perf_counter()
            inputs = batch["images"].to(self.device, non_blocking=True)
            if channels_last and inputs.ndim == 4:
                inputs = inputs.contiguous(memory_format=torch.channels_last)
            labels = batch["labels"].to(self.device, non_blocking=True)
            with torch.autocast(self.device.type, dtype=self.autocast_dtype,
                                enabled=self.autocast_dtype is not None):
                logits = module(inputs)
                loss = self.loss_fn(logits.float(), labels)
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
            self.emit(BatchEnd(epoch, step, steps, batch_loss, optimizer.param_groups[0]["lr"], n / elapsed))
        if seen == 0:
            raise DataError("No training file could be decoded.", "Check the files in the folder.")
        return total_loss / seen, correct / seen

    @torch.inference_mode()
    def _validate(self, module: nn.Module, batches: Iterator[Batch]) -> tuple[float, float, dict[str, Any]]:
        module.eval()
        logits_all, labels_all, index_all = [], [], []
        for batch in batches:
            self.control.checkpoint()
            inputs = batch["images"].to(self.device, non_blocking=True)
            if inputs.ndim == 4:
                inputs = inputs.contiguous(memory_format=torch.channels_last)
            with torch.autocast(self.device.type, dtype=self.autocast_dtype,
                                enabled=self.autocast_dtype is not None):
                logits = module(inputs).float()
            logits_all.append(logits.cpu())
            labels_all.append(batch["labels"].cpu())
            index_all.append(batch["indices"].cpu())
        if not logits_all:
            return float("nan"), 0.0, {"logits": torch.empty(0), "labels": torch.empty(0),
                                       "indices": torch.empty(0, dtype=torch.long)}
        logits = torch.cat(logits_all)
        labels = torch.cat(labels_all)
        loss = float(self.loss_fn(logits, labels))
        acc = float((logits.argmax(dim=1) == labels).double().mean())
        return loss, acc, {"logits": logits, "labels": labels, "indices": torch.cat(index_all)}

    def _end_epoch(self, phase: Phase, train_loss: float, train_acc: float, val_loss: float, val_acc: float,
                   scheduler, optimizer, tick: float, trainable: nn.Module, prefix: str) -> None:
        state = self.state
        seconds = time.perf_counter() - tick
        is_best = val_acc > state.best_acc or (val_acc == state.best_acc and val_loss < state.best_loss)
        if is_best:
            state.best_acc, state.best_loss, state.best_epoch = val_acc, val_loss, state.epoch
            state.best_state = {
                prefix + key: value.detach().to("cpu", copy=True) for key, value in trainable.state_dict().items()
            }
        lr = optimizer.param_groups[0]["lr"]
        state.history.append({
            "epoch": state.epoch, "phase": phase.name, "train_loss": round(train_loss, 6),
            "train_acc": round(train_acc, 6), "val_loss": round(val_loss, 6), "val_acc": round(val_acc, 6),
            "lr": lr, "seconds": round(seconds, 4),
        })
        self.run_dir.write_history(state.history)
        checkpoint = {
            "epoch": state.epoch,
            "phase": phase.name,
            "trainable_prefix": prefix,
            "trainable_state": {k: v.detach().cpu() for k, v in trainable.state_dict().items()},
            "optimizer": optimizer.state_dict(),
            "scheduler": scheduler.state_dict(),
            "best": {"epoch": state.best_epoch, "acc": state.best_acc, "loss": state.best_loss},
            "best_state": state.best_state,
            "torch_rng": torch.get_rng_state(),
        }
        path = self.run_dir.save_torch("checkpoint.pt", checkpoint)
        self.emit(CheckpointSaved(str(path), state.epoch))
        self.emit(EpochEnd(state.epoch, self.config.epochs, train_loss, train_acc, val_loss, val_acc, lr,
                           seconds, is_best))

    # -- the end --------------------------------------------------------------------------------------
    def _finish(self, status: str, seconds: float) -> dict[str, Any]:
        state = self.state
        if state.best_state is not None:
            self.model.load_state_dict(state.best_state, strict=False)
        self.model.eval()
        probabilities, labels = self._final_predictions()
        metrics = report(probabilities, labels, self.spec.classes, self.val_paths)
        metrics.update({
            "status": status,
            "val_accuracy": metrics["accuracy"],
            "val_loss": round(float(nn.functional.nll_loss(probabilities.clamp_min(1e-12).log(), labels)), 6)
            if len(labels) else None,
            "epochs": len(state.history),
            "epochs_planned": self.config.epochs,
            "best_epoch": state.best_epoch,
            "train_seconds": round(seconds, 3),
            "device": str(self.device),
            "backbone": self.entry.name,
            "unfreeze_blocks": self.unfreeze,
            "fast_path": self.fast_path,
            "classes": self.spec.classes,
            "sizes": {"train": len(self.spec.train), "val": len(labels)},
            "skipped_files": len(state.skipped),
        })
        cpu_state = {k: v.detach().cpu() for k, v in self.model.state_dict().items()}
        self.run_dir.save_torch("model.pt", model_payload(
            self.entry.name, self.config.head, self.spec.classes, self.preprocess.to_dict(), cpu_state,
            {"best_epoch": state.best_epoch, "val_accuracy": metrics["accuracy"]},
        ))
        self.run_dir.write_json("metrics.json", metrics)
        return metrics

    def _final_predictions(self) -> tuple[torch.Tensor, torch.Tensor]:
        if self.fast_path:
            val = self._val_embedded
            with torch.inference_mode():
                logits = self.model.head(val.features.to(self.device)).float().cpu()
            self.val_paths = [self.spec.val[i].path for i in val.kept]
            return logits.softmax(dim=1), val.labels
        loader = self._eval_loader(self.spec.val, 0)
        _, _, outputs = self._validate(self.model, self._image_batches(loader, self.spec.val))
        self.val_paths = [self.spec.val[i].path for i in outputs["indices"].tolist()]
        return outputs["logits"].softmax(dim=1), outputs["labels"].long()


def train(spec: DatasetSpec, config: TrainConfig, run: RunDir, on_event: Listener,
          control: Control | None = None) -> dict[str, Any]:
    """Train per `config` on `spec`, writing `run`; returns the final metrics."""
    return Trainer(spec, config, run, on_event, control).run()

