"""The one training loop behind the GUI, the CLI and the tests.

It emits events (see events.py) and never prints; it honours pause/cancel between batches; it writes
a checkpoint atomically at every epoch end, so a crash or a kill loses at most the current epoch, and
`resume()` continues a run as if it had never stopped (same epochs, same shuffles, same history).

Two ways to train, chosen by the config:
- fast path (feature extraction, no augmentation): the backbone embeds each image once (cached on disk),
  then only the head trains, on the embeddings; extra epochs cost almost nothing;
- full path: images flow through the network every epoch, with augmentation, the top K blocks unfrozen
  at a lower learning rate; optionally a two-phase schedule (head first, then unfreeze).
"""

from __future__ import annotations

import logging
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
from tlstudio.core import devices
from tlstudio.core.control import Cancelled, Control
from tlstudio.core.data.loaders import Batch, auto_workers, make_loader
from tlstudio.core.data.pipelines import AudioPipeline, ImagePipeline
from tlstudio.core.data.spec import DatasetSpec, Sample, SkippedFile
from tlstudio.core.errors import ConfigError, DataError, OutOfMemoryError, RunError
from tlstudio.core.inference.metrics import report
from tlstudio.core.media.audio import AudioSettings
from tlstudio.core.models import freezing
from tlstudio.core.models.catalogue import BackboneEntry
from tlstudio.core.models.registry import get_entry
from tlstudio.core.models.saved import model_payload
from tlstudio.core.models.transfer_model import TransferModel, build_model
from tlstudio.core.models.weights import pretrained_state, sha256_of
from tlstudio.core.store.paths import features_cache_dir
from tlstudio.core.store.runs import RunDir
from tlstudio.core.training import steps as steps_mod
from tlstudio.core.training.batching import tensor_batches, warmup_cosine
from tlstudio.core.training.config import TrainConfig
from tlstudio.core.training.events import (
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
from tlstudio.core.training.feature_cache import Embedded, FeatureCache, bucket_key, embed

log = logging.getLogger(__name__)


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
    elapsed: float = 0.0  # seconds spent in earlier sessions of a resumed run


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def _autocast_dtype(device: torch.device, amp: bool) -> torch.dtype | None:
    if not amp or device.type != "cuda":
        return None
    return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16


class Trainer:
    """One run: holds the model and the loop's state; `run()` does the work."""

    def __init__(self, spec: DatasetSpec, config: TrainConfig, run: RunDir, emit: Listener,
                 control: Control | None = None, checkpoint: dict[str, Any] | None = None) -> None:
        self.spec = spec
        self.config = config
        self.run_dir = run
        self.emit = emit
        self.control = control or Control()
        self.checkpoint = checkpoint
        self.state = _State(skipped=list(spec.skipped))
        self.entry: BackboneEntry = get_entry(config.backbone)
        self._embedded: dict[str, Embedded] = {}
        self.val_paths: list[str] = []

    # -- set-up ---------------------------------------------------------------------------------------
    def _prepare(self) -> None:
        config, spec = self.config, self.spec
        config.validate()
        if spec.modality == "image" and self.entry.modality == "audio":
            raise ConfigError(f"{self.entry.name} is a sound encoder and cannot read images.",
                              "Choose an image backbone such as mobilenet_v2 (see `tlstudio backbones`).")
        if spec.modality == "audio":
            settings = AudioSettings(window_seconds=config.window_seconds)
            self.pipeline = AudioPipeline(settings, "raw" if self.entry.modality == "audio" else "logmel")
        else:
            self.pipeline = ImagePipeline(self.entry.preprocess())
        self.description = self.pipeline.describe()
        if not spec.val:
            raise DataError(
                "There are no validation files, so the run could not be judged.",
                "Use a validation share above 0 (--val-split 0.2) or add a val/ folder.",
            )
        self.device = torch.device(devices.resolve(config.device))
        self.autocast_dtype = _autocast_dtype(self.device, config.amp)
        self.model = self._fresh_model()  # reads the weights file: a missing or unsafe one is explained here
        self.weights_id = self._weights_id()
        self.unfreeze = freezing.parse_unfreeze(config.unfreeze, len(self.model.blocks))
        self.augment = config.resolved_augment(self.unfreeze)
        self._place_model()
        self.fast_path = self.unfreeze == 0 and self.augment == "none" and config.schedule == "one-phase"
        if config.schedule == "two-phase":
            self.phases = [
                Phase("head", 0, config.warmup_epochs),
                Phase("fine-tune", self.unfreeze, config.epochs - config.warmup_epochs),
            ]
        else:
            self.phases = [Phase("train", self.unfreeze, config.epochs)]
        self.loss_fn = nn.CrossEntropyLoss(label_smoothing=config.label_smoothing)

    def _fresh_model(self) -> TransferModel:
        """The model as a run starts: pretrained (or seeded random) backbone and a seeded new head.

        Called again only when a run restarts after running out of memory, so no copy of the weights is
        kept around for that rare case.
        """
        seed_everything(self.config.seed)
        backbone_state = pretrained_state(
            self.entry, self.config.pretrained,
            progress=lambda done, total: self.emit(Progress("download weights", done, total)),
        )
        return build_model(self.entry, len(self.spec.classes), self.config.head, backbone_state)

    def _place_model(self) -> None:
        self.model.frontend = self.pipeline.frontend(self.augment)
        self.model.to(self.device, memory_format=torch.channels_last)

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
        self.run_dir.write_json("labels.json", {"classes": self.spec.classes, **self.description})
        self._write_dataset()

    def _write_dataset(self) -> None:
        self.run_dir.write_json("dataset.json", {**self.spec.to_dict(),
                                                 "skipped": [vars(s) for s in self.state.skipped]})
        lines = ["path\treason"] + [f"{s.path}\t{s.reason}" for s in self.state.skipped]
        self.run_dir.write_text("skipped.tsv", "\n".join(lines) + "\n")

    # -- data -----------------------------------------------------------------------------------------
    def _eval_loader(self, samples: Sequence[Sample], workers: int) -> DataLoader:
        return make_loader(self.pipeline.eval_dataset(samples), self.config.batch_size, workers, self.device)

    def _note_bad(self, samples: Sequence[Sample], bad: list[tuple[int, str]]) -> None:
        known = {skipped.path for skipped in self.state.skipped}
        fresh = [(index, reason) for index, reason in bad if samples[index].path not in known]
        if not fresh:
            return
        files = [samples[index].path for index, _ in fresh]
        self.state.skipped.extend(SkippedFile(samples[index].path, reason) for index, reason in fresh)
        self.emit(Problem(f"{len(fresh)} file(s) could not be read and were skipped.", files))
        self._write_dataset()

    # -- the run --------------------------------------------------------------------------------------
    def run(self) -> dict[str, Any]:
        self._prepare()
        if self.checkpoint is None:
            self._write_run_header()
        plan = freezing.plan(self.model, self.unfreeze)
        self.emit(RunStarted(str(self.run_dir.path), self.config.to_dict(), self.spec.sizes(), self.spec.classes,
                             self.spec.modality))
        self.emit(ModelReady(self.entry.name, str(self.device), plan.trainable_blocks, plan.frozen_blocks,
                             plan.trainable_params, plan.total_params, self.fast_path))
        started = self._session_start = time.perf_counter()
        status = "completed"
        try:
            self._train_with_memory_retry()
        except Cancelled:
            status = "cancelled"
            if not self.state.history:
                self.emit(Finished("cancelled", str(self.run_dir.path), {}))
                return {"status": "cancelled"}
        seconds = self.state.elapsed + time.perf_counter() - started
        metrics = self._finish(status, seconds)
        self.emit(Finished(status, str(self.run_dir.path), metrics))
        return metrics

    def _train_with_memory_retry(self) -> None:
        """Out of memory: say so, halve the batch, start again once; a second time is a clear error."""
        retried = False
        while True:
            try:
                self._restore()
                self._train_phases()
                return
            except torch.OutOfMemoryError as exc:
                old = self.config.batch_size
                if retried or old <= 1:
                    raise OutOfMemoryError(
                        f"The {self.device} device ran out of memory even with batch size {old}.",
                        "Use a smaller --batch-size, a smaller backbone, or fewer unfrozen blocks.",
                    ) from exc
                retried = True
                self.config.batch_size = max(1, old // 2)
                if self.device.type == "cuda":
                    torch.cuda.empty_cache()
                self.emit(Problem(f"Out of memory with batch size {old}; retrying once with batch size "
                                  f"{self.config.batch_size}. Choose a smaller batch to avoid this next time."))
                self._embedded.clear()
                self.model = self._fresh_model()
                self._place_model()
                self.state = _State(skipped=self.state.skipped)
                self.checkpoint = None  # start over with the smaller batch: a clean schedule

    def _restore(self) -> None:
        """Put back a checkpoint's model, history and best-so-far (the loop restores the rest per phase)."""
        checkpoint = self.checkpoint
        if checkpoint is None:
            return
        self.model.load_state_dict(checkpoint["model_state"], strict=False)
        self.config.batch_size = int(checkpoint.get("batch_size", self.config.batch_size))
        best = checkpoint["best"]
        self.state.history = list(checkpoint["history"])
        self.state.epoch = int(checkpoint["epoch"])
        self.state.best_epoch, self.state.best_acc, self.state.best_loss = best["epoch"], best["acc"], best["loss"]
        self.state.best_state = checkpoint["best_state"]
        self.state.elapsed = float(checkpoint.get("elapsed", 0.0))

    def _train_phases(self) -> None:
        done = self.checkpoint["epoch"] if self.checkpoint else 0
        if self.fast_path:
            self._embed_all()
        last = 0
        for index, phase in enumerate(self.phases):
            first, last = last + 1, last + phase.epochs
            if done >= last:
                continue  # finished before the interruption; its weights came back with the checkpoint
            self._train_phase(index, phase, first, last, resume_at=done + 1 if done >= first else None)

    def _embed_all(self) -> None:
        if self._embedded:
            return
        cache = FeatureCache(features_cache_dir() if self.config.cache_features else None)
        bucket = bucket_key(self.entry.name, self.weights_id, self.description)
        workers = auto_workers(len(self.spec.train) + len(self.spec.val), self.config.workers)
        for split in ("train", "val"):
            samples = getattr(self.spec, split)
            result = embed(
                self.model, samples, lambda subset: self._eval_loader(subset, workers), self.device, cache,
                bucket, self.control,
                progress=lambda done, total, split=split: self.emit(Progress(f"embedding {split}", done, total)),
                autocast_dtype=self.autocast_dtype,
            )
            self._note_bad(samples, [(i, reason) for i, reason in result.bad])
            self._embedded[split] = result
        if len(self._embedded["train"].labels) == 0:
            raise DataError("No training file could be read.", "Check the files in the folder.")

    def _train_phase(self, index: int, phase: Phase, first: int, last: int, resume_at: int | None) -> None:
        config = self.config
        plan = freezing.apply(self.model, phase.unfreeze)
        generator = torch.Generator().manual_seed(config.seed + index)
        if self.fast_path:
            module: nn.Module = self.model.head
            train, val = self._embedded["train"], self._embedded["val"]
            train_x, train_y = train.features.to(self.device), train.labels.to(self.device)
            val_x, val_y = val.features.to(self.device), val.labels.to(self.device)
            steps = -(-len(train_y) // config.batch_size)
            prefix = "head."
        else:
            module = self.model
            workers = auto_workers(len(self.spec.train), config.workers)
            loader = make_loader(
                self.pipeline.train_dataset(self.spec.train, self.augment), config.batch_size, workers, self.device,
                generator=generator, drop_last=len(self.spec.train) > config.batch_size,
            )
            val_loader = self._eval_loader(self.spec.val, workers)
            steps = len(loader)
            prefix = ""
        optimizer, scheduler = self._optimizer(module, phase.epochs * steps)
        if resume_at is not None:
            checkpoint = self.checkpoint
            assert checkpoint is not None
            optimizer.load_state_dict(checkpoint["optimizer"])
            scheduler.load_state_dict(checkpoint["scheduler"])
            generator.set_state(checkpoint["generator"])
            torch.set_rng_state(checkpoint["torch_rng"])
            random.setstate(checkpoint["python_rng"])
            first = resume_at
        self.emit(PhaseStarted(phase.name, first, last, plan.trainable_blocks, plan.trainable_params))
        for _ in range(first, last + 1):
            self.state.epoch += 1
            tick = time.perf_counter()
            if self.fast_path:
                train_loss, train_acc = self._train_epoch(
                    module, tensor_batches(train_x, train_y, config.batch_size, generator), steps, optimizer,
                    scheduler)
                val_loss, val_acc, _ = self._validate(module, tensor_batches(val_x, val_y, 1024, None))
                self.val_paths = [self.spec.val[i].path for i in val.kept]
            else:
                train_loss, train_acc = self._train_epoch(module, self._image_batches(loader, self.spec.train),
                                                          steps, optimizer, scheduler)
                val_loss, val_acc, outputs = self._validate(module, self._image_batches(val_loader, self.spec.val))
                self.val_paths = [self.spec.val[i].path for i in outputs["indices"].tolist()]
            self._end_epoch(index, phase, (train_loss, train_acc, val_loss, val_acc), optimizer, scheduler,
                            generator, tick, module, prefix)

    def _optimizer(self, module: nn.Module, total_steps: int):
        config = self.config
        if isinstance(module, TransferModel):
            groups = freezing.param_groups(module, config.lr, config.lr * config.backbone_lr_factor,
                                           config.weight_decay)
        else:
            groups = [{"params": [p for p in module.parameters() if p.requires_grad], "lr": config.lr,
                       "weight_decay": config.weight_decay, "role": "head"}]
        optimizer = torch.optim.AdamW(groups)
        scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, warmup_cosine(max(1, total_steps)))
        return optimizer, scheduler

    def _image_batches(self, loader: DataLoader, samples: Sequence[Sample]) -> Iterator[Batch]:
        for batch in loader:
            if batch["bad"]:
                self._note_bad(samples, batch["bad"])
            if batch["labels"].numel():
                yield batch

    def _train_epoch(self, module: nn.Module, batches: Iterator[Batch], steps: int, optimizer,
                     scheduler) -> tuple[float, float]:
        return steps_mod.train_epoch(self._step_context(), module, batches, steps, self.state.epoch, optimizer,
                                     scheduler)

    def _validate(self, module: nn.Module, batches: Iterator[Batch],
                  interruptible: bool = True) -> tuple[float, float, dict[str, Any]]:
        return steps_mod.validate(self._step_context(), module, batches, interruptible)

    def _step_context(self) -> steps_mod.StepContext:
        return steps_mod.StepContext(self.device, self.autocast_dtype, self.loss_fn, self.control, self.emit)

    def _end_epoch(self, phase_index: int, phase: Phase, scores: tuple[float, float, float, float], optimizer,
                   scheduler, generator: torch.Generator, tick: float, trainable: nn.Module, prefix: str) -> None:
        train_loss, train_acc, val_loss, val_acc = scores
        state = self.state
        seconds = time.perf_counter() - tick
        is_best = val_acc > state.best_acc or (val_acc == state.best_acc and val_loss < state.best_loss)
        if is_best:
            state.best_acc, state.best_loss, state.best_epoch = val_acc, val_loss, state.epoch
            state.best_state = {prefix + k: v.detach().to("cpu", copy=True) for k, v in trainable.state_dict().items()}
        lr = optimizer.param_groups[0]["lr"]
        state.history.append({
            "epoch": state.epoch, "phase": phase.name, "train_loss": round(train_loss, 6),
            "train_acc": round(train_acc, 6), "val_loss": round(val_loss, 6), "val_acc": round(val_acc, 6),
            "lr": lr, "seconds": round(seconds, 4),
        })
        checkpoint = {
            "format": "tlstudio-checkpoint",
            "epoch": state.epoch,
            "phase_index": phase_index,
            "model_state": {prefix + k: v.detach().cpu() for k, v in trainable.state_dict().items()},
            "optimizer": optimizer.state_dict(),
            "scheduler": scheduler.state_dict(),
            "generator": generator.get_state(),
            "torch_rng": torch.get_rng_state(),
            "python_rng": random.getstate(),
            "history": state.history,
            "best": {"epoch": state.best_epoch, "acc": state.best_acc, "loss": state.best_loss},
            "best_state": state.best_state,
            "batch_size": self.config.batch_size,
            "elapsed": state.elapsed + time.perf_counter() - self._session_start,
        }
        path = self.run_dir.save_torch("checkpoint.pt", checkpoint)  # first the state, then the table of it
        self.run_dir.write_history(state.history)
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
            "batch_size": self.config.batch_size,
            "classes": self.spec.classes,
            "sizes": {"train": len(self.spec.train), "val": len(labels)},
            "skipped_files": len(state.skipped),
        })
        cpu_state = {k: v.detach().cpu() for k, v in self.model.state_dict().items()}
        self.run_dir.save_torch("model.pt", model_payload(
            self.entry.name, self.config.head, self.spec.classes, self.description, cpu_state,
            {"best_epoch": state.best_epoch, "val_accuracy": metrics["accuracy"]},
        ))
        self.run_dir.write_json("metrics.json", metrics)
        self._write_predictions(probabilities, labels)
        return metrics

    def _write_predictions(self, probabilities: torch.Tensor, labels: torch.Tensor) -> None:
        """One row per validation file: what the GUI shows when a confusion-matrix cell is clicked."""
        classes = self.spec.classes
        confidence, predicted = probabilities.max(dim=1)
        rows = ["path\ttrue\tpredicted\tconfidence"] + [
            f"{path}\t{classes[int(t)]}\t{classes[int(p)]}\t{float(c):.4f}"
            for path, t, p, c in zip(self.val_paths, labels, predicted, confidence, strict=True)
        ]
        self.run_dir.write_text("predictions.tsv", "\n".join(rows) + "\n")

    def _final_predictions(self) -> tuple[torch.Tensor, torch.Tensor]:
        if self.fast_path:
            val = self._embedded["val"]
            with torch.inference_mode():
                logits = self.model.head(val.features.to(self.device)).float().cpu()
            self.val_paths = [self.spec.val[i].path for i in val.kept]
            return logits.softmax(dim=1), val.labels
        loader = self._eval_loader(self.spec.val, 0)
        _, _, outputs = self._validate(self.model, self._image_batches(loader, self.spec.val), interruptible=False)
        self.val_paths = [self.spec.val[i].path for i in outputs["indices"].tolist()]
        return outputs["logits"].softmax(dim=1), outputs["labels"].long()


def train(spec: DatasetSpec, config: TrainConfig, run: RunDir, on_event: Listener,
          control: Control | None = None) -> dict[str, Any]:
    """Train per `config` on `spec`, writing `run`; returns the final metrics."""
    return Trainer(spec, config, run, on_event, control).run()


def resume(run: RunDir, on_event: Listener, control: Control | None = None) -> dict[str, Any]:
    """Continue a cancelled, crashed or killed run from its last completed epoch, in the same folder."""
    config = TrainConfig.from_dict(run.read_json("config.json"))
    spec = DatasetSpec.from_dict(run.read_json("dataset.json"))
    checkpoint = run.load_torch("checkpoint.pt") if run.file("checkpoint.pt").is_file() else None
    if checkpoint is not None and checkpoint.get("format") != "tlstudio-checkpoint":
        raise RunError(f"{run.file('checkpoint.pt')} is not a studio checkpoint.")
    if checkpoint is not None and checkpoint["epoch"] >= config.epochs:
        metrics_file = run.file("metrics.json")
        if metrics_file.is_file() and run.read_json("metrics.json").get("status") == "completed":
            raise RunError(f"The run {run.path.name} already finished all {config.epochs} epochs.",
                           "Start a new run to train more.")
    from pathlib import Path

    if not Path(spec.root).is_dir():
        raise DataError(f"The run's data folder {spec.root} is no longer there.",
                        "Put the folder back where it was to resume this run.")
    return Trainer(spec, config, run, on_event, control, checkpoint=checkpoint).run()
