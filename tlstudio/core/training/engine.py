"""The one training loop behind the GUI, the CLI and the tests.

It emits events (events.py) and never prints; it honours pause/cancel between batches; listeners write
the best weights, the checkpoint and the history at every epoch end (checkpoints.py), so a crash or a
kill loses at most the current epoch, and `resume()` continues a run exactly as if it had never stopped.

One loop, two batch sources (sources.py): the fast path trains the head on cached embeddings; the full
path decodes, augments and runs the whole network every epoch. Phases (head first, then unfreeze K
blocks at a lower learning rate) are the same loop run twice.
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import os
import random
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from tlstudio import __version__
from tlstudio.core import devices
from tlstudio.core.control import Cancelled, Control
from tlstudio.core.data.audio_clips import pool_groups
from tlstudio.core.data.loaders import auto_workers, make_loader
from tlstudio.core.data.pipelines import AudioPipeline, ImagePipeline
from tlstudio.core.data.spec import DatasetSpec, Sample, SkippedFile, changed_files, read_spec
from tlstudio.core.errors import (
    ConfigError,
    DataError,
    DivergedError,
    OutOfMemoryError,
    RunError,
    StorageError,
)
from tlstudio.core.inference import novelty
from tlstudio.core.inference.calibration import calibrate, ece_with, pooled
from tlstudio.core.inference.metrics import report
from tlstudio.core.inference.regression import regression_report
from tlstudio.core.media.audio import AudioSettings
from tlstudio.core.models import freezing
from tlstudio.core.models.registry import get_entry
from tlstudio.core.models.saved import model_payload
from tlstudio.core.models.transfer_model import TransferModel, build_model
from tlstudio.core.models.weights import pretrained_state, sha256_of
from tlstudio.core.seeding import derive_seed
from tlstudio.core.store.paths import features_cache_dir
from tlstudio.core.store.runs import RunDir
from tlstudio.core.training import checkpoints, continuation, distributed, feature_cache, heap, mapped, steps
from tlstudio.core.training.batching import warmup_cosine
from tlstudio.core.training.config import TrainConfig
from tlstudio.core.training.embedding import Embedded, embed
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
from tlstudio.core.training.objective import improves, objective_for
from tlstudio.core.training.sources import FeatureSource, FileSource

log = logging.getLogger(__name__)


@dataclass
class Phase:
    name: str
    unfreeze: int
    epochs: int


@dataclass
class _State:
    history: list[dict[str, Any]] = field(default_factory=list)
    best: dict[str, Any] = field(default_factory=lambda: {"epoch": 0, "acc": -1.0, "loss": float("inf")})
    skipped: list[SkippedFile] = field(default_factory=list)
    epoch: int = 0
    epochs_this_session: int = 0
    elapsed: float = 0.0  # seconds spent in earlier sessions of a resumed run


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def autocast_dtype(device: torch.device, amp: bool) -> torch.dtype | None:
    """bf16 only where the run's GPU has it natively (emulated bf16 is slow); else fp16 with a scaler."""
    if not amp or device.type != "cuda":
        return None
    with torch.cuda.device(device):
        native = torch.cuda.is_bf16_supported(including_emulation=False)
    return torch.bfloat16 if native else torch.float16


def is_out_of_memory(exc: BaseException) -> bool:
    """CUDA raises torch.OutOfMemoryError; Apple's MPS a RuntimeError that says so."""
    return isinstance(exc, torch.OutOfMemoryError) or (
        isinstance(exc, RuntimeError) and "out of memory" in str(exc).lower())


class Trainer:
    """One run: holds the model and the loop's state; `run()` does the work."""

    def __init__(self, spec: DatasetSpec, config: TrainConfig, run: RunDir, emit: Listener,
                 control: Control | None = None, checkpoint: dict[str, Any] | None = None,
                 world: distributed.World = distributed.SINGLE) -> None:
        self.spec = spec
        self.config = config
        self.run_dir = run
        self.emit = emit
        self.control = control or Control()
        self.checkpoint = checkpoint
        self.state = _State(skipped=list(spec.skipped))
        self.entry = get_entry(config.backbone)
        self._embedded: dict[str, Embedded] = {}
        self.continuation: continuation.Continuation | None = None
        self.world = world  # launched on many processes: rank 0 alone writes the run folder
        self.listeners = [checkpoints.BestWeights(run), checkpoints.Checkpointer(run),
                          checkpoints.HistoryWriter(run)] if world.is_main else []

    # -- set-up ---------------------------------------------------------------------------------------
    def _prepare(self) -> None:
        config = self.config
        config.validate()
        if config.start_from:  # old and new classes, rehearsal files, the forgetting meter's files
            self.spec, self.continuation = continuation.plan(self.spec, config.start_from, config.rehearsal,
                                                             config.seed, self.entry.name)
        spec = self.spec
        if spec.modality == "image" and self.entry.modality == "audio":
            raise ConfigError(f"{self.entry.name} is a sound encoder and cannot read images.",
                              "Choose an image backbone such as mobilenet_v2 (see `tlstudio backbones`).")
        if spec.modality == "audio":
            settings = AudioSettings(window_seconds=config.window_seconds)
            self.pipeline: ImagePipeline | AudioPipeline = AudioPipeline(
                settings, "raw" if self.entry.modality == "audio" else "logmel")
        else:
            self.pipeline = ImagePipeline(self.entry.preprocess())
        self.description = self.pipeline.describe()
        if not spec.val:
            raise DataError(
                "There are no validation files, so the run could not be judged.",
                "Use a validation share above 0 (--val-split 0.2) or add a val/ folder.",
            )
        self.device = distributed.local_device(self.world, torch.device(devices.resolve(config.device)))
        distributed.join(self.world, self.device)
        self.autocast_dtype = autocast_dtype(self.device, config.amp)
        self.model = self._fresh_model()  # reads the weights file: a missing or unsafe one is explained here
        self.weights_id = self._weights_id()
        if self.checkpoint is not None:  # resuming: the backbone must be the one the saved epochs learnt on
            recorded = (self.run_dir.read_json("config.json").get("resolved") or {}).get("weights")
            if recorded and recorded != self.weights_id:
                raise RunError(f"The weights this run started from changed since ({recorded} then, "
                               f"{self.weights_id} now); resuming would mix two models.",
                               "Start a new run (with --from again, if it continued another run).")
        self.unfreeze = freezing.parse_unfreeze(config.unfreeze, len(self.model.blocks))
        self.augment = config.resolved_augment(self.unfreeze)
        self.fast_path = self.unfreeze == 0 and self.augment == "none" and config.schedule == "one-phase"
        self._place_model()
        if config.schedule == "two-phase":
            self.phases = [
                Phase("head", 0, config.warmup_epochs),
                Phase("fine-tune", self.unfreeze, config.epochs - config.warmup_epochs),
            ]
        else:
            self.phases = [Phase("train", self.unfreeze, config.epochs)]
        self.objective = objective_for(spec.task, spec.target, config.label_smoothing)
        self.loss_fn = self.objective.loss_fn

    def _fresh_model(self) -> TransferModel:
        """The model as a run starts: pretrained (or seeded random) backbone and a seeded new head.

        Called again only when a run restarts after running out of memory, so no copy of the weights is
        kept around for that rare case.
        """
        seed_everything(self.config.seed)
        backbone_state = None if self.continuation else pretrained_state(
            self.entry, self.config.pretrained,
            progress=lambda done, total: self.emit(Progress("download weights", done, total)),
        )
        model = build_model(self.entry, len(self.spec.classes), self.config.head, backbone_state,
                            target=self.spec.target if self.spec.regression else None)
        if self.continuation:
            continuation.load_into(model, self.continuation, self.spec.classes)
        return model

    def _place_model(self) -> None:
        self.model.frontend = self.pipeline.frontend(self.augment)
        self.model.to(self.device, memory_format=torch.channels_last)
        if self.config.checkpointing and not self.fast_path:
            from tlstudio.core.models import checkpointing

            checkpointing.enable(self.model.backbone, self.model.blocks)

    def _weights_id(self) -> str:
        if self.continuation:  # the old run's (perhaps fine-tuned) backbone: its own cache entries
            return f"run-{sha256_of(Path(self.continuation.source) / 'model.pt')[:16]}"
        source = self.config.pretrained
        if source == "imagenet":
            return self.entry.weights_filename
        if source == "none":
            return f"random-seed{self.config.seed}"
        return f"file-{sha256_of(Path(source))[:16]}"

    def _write_run_header(self) -> None:
        spec = self.spec
        resolved = {
            **self.config.to_dict(),
            # the split this run really used (a window may have scanned with other settings than it trains)
            "val_split": spec.split_settings.get("val_split", self.config.val_split),
            "group_by": spec.split_settings.get("group_by", self.config.group_by),
            "resolved": {
                "device": str(self.device),
                "unfreeze_blocks": self.unfreeze,
                "augment": self.augment,
                "fast_path": self.fast_path,
                "weights": self.weights_id,
                "amp": str(self.autocast_dtype).replace("torch.", "") if self.autocast_dtype else "off",
                "world_size": self.world.size,
                "batch_per_process": distributed.per_process_batch(self.config.batch_size, self.world),
                "split": {"source": spec.split_source, **spec.split_settings, "grouping": spec.grouping},
                **({"continued_from": self.continuation.summary()} if self.continuation else {}),
            },
            "tlstudio_version": __version__,
            "torch_version": torch.__version__,
        }
        self.run_dir.write_json("config.json", resolved)
        self.run_dir.write_json("labels.json", {"classes": spec.classes, **self.description})
        self._write_dataset()

    def _write_dataset(self) -> None:
        if not self.world.is_main:
            return
        if not hasattr(self, "_sizes"):  # each file's size when the run started: resume checks them
            self._sizes = {}
            for sample in self.spec.train + self.spec.val + self.spec.test:
                with contextlib.suppress(OSError):
                    self._sizes[sample.path] = os.stat(sample.path).st_size
        self.run_dir.write_json("dataset.json", {**self.spec.to_dict(), "sizes": self._sizes,
                                                 "skipped": [vars(s) for s in self.state.skipped]})
        self.run_dir.write_table("skipped.tsv", ["path", "reason"],
                                 [[s.path, s.reason] for s in self.state.skipped])

    def _note_bad(self, samples, bad: list[tuple[int, str]]) -> None:
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
        if self.checkpoint is None and self.world.is_main:
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
            if self.state.epochs_this_session == 0:  # nothing new to save: the files on disk stay as they are
                self.emit(Finished("cancelled", str(self.run_dir.path), {}))
                return {"status": "cancelled"}
        except DivergedError:
            if self.state.history:
                self._finish("diverged", self.state.elapsed + time.perf_counter() - started)
            distributed.barrier(self.world)
            raise
        seconds = self.state.elapsed + time.perf_counter() - started
        metrics = self._finish(status, seconds)
        distributed.barrier(self.world)  # together: rank 0 writes model.pt and metrics.json before anyone leaves
        self.emit(Finished(status, str(self.run_dir.path), metrics))
        return metrics

    def _train_with_memory_retry(self) -> None:
        """Out of memory: say so and start again with twice the micro-batches (gradient accumulation: the
        same effective batch, so the same schedule and results, in half the activation memory), until one
        file at a time does not fit either; that is a clear error."""
        while True:
            try:
                self._restore()
                self._train_phases()
                return
            except (torch.OutOfMemoryError, RuntimeError) as exc:
                if not is_out_of_memory(exc):
                    raise
                config = self.config
                micro = self._micro_batch()
                if micro <= 1 or self.world.active:  # together, one process cannot restart alone
                    raise OutOfMemoryError(
                        f"The {self.device} device ran out of memory even with {micro} file(s) per step.",
                        "Use a smaller backbone, fewer unfrozen blocks, or a device with more memory.",
                    ) from exc
                config.accumulate = min(config.batch_size, config.accumulate * 2)
                if self.device.type == "cuda":
                    torch.cuda.empty_cache()
                self.emit(Problem(f"Out of memory with {micro} files per step; starting again with "
                                  f"{self._micro_batch()} files per step, accumulated "
                                  f"{config.accumulate} times: the same batch of {config.batch_size}. "
                                  f"--accumulate {config.accumulate} avoids the restart next time."))
                self._embedded.clear()
                self.model = self._fresh_model()
                self._place_model()
                self.state = _State(skipped=self.state.skipped)
                self.checkpoint = None  # start over with the smaller batch: a clean schedule
                self.run_dir.file(checkpoints.BEST_FILE).unlink(missing_ok=True)

    def _restore(self) -> None:
        """Put back a checkpoint's model, history and best-so-far (optimiser state comes back per phase)."""
        checkpoint = self.checkpoint
        if checkpoint is None:
            return
        self.model.load_state_dict(checkpoint["model_state"], strict=False)
        self.config.batch_size = int(checkpoint.get("batch_size", self.config.batch_size))
        self.config.accumulate = int(checkpoint.get("accumulate", self.config.accumulate))
        self.state.history = list(checkpoint["history"])
        self.state.epoch = int(checkpoint["epoch"])
        self.state.best = dict(checkpoint["best"])
        self.state.elapsed = float(checkpoint.get("elapsed", 0.0))

    def _train_phases(self) -> None:
        done = self.checkpoint["epoch"] if self.checkpoint else 0
        if self.fast_path:
            self._embed_all()
            heap.trim()  # the backbone's activations are freed: the head's epochs need a fraction of that
        last = 0
        for index, phase in enumerate(self.phases):
            first, last = last + 1, last + phase.epochs
            if done >= last:
                continue  # finished before the interruption; its weights came back with the checkpoint
            self._train_phase(index, phase, first, last, resume=first <= done)

    def _embed_all(self) -> None:
        directory = features_cache_dir()
        name, info = feature_cache.bucket_key(self.entry.name, self.weights_id, self.description,
                                              f"{self.device.type}/{self.autocast_dtype}")
        # together, each process embeds its share of every split into the shared cache (segments named by
        # process, so they never collide; none merges while others read; rank 0 alone evicts), then all
        # exchange their rows
        bucket = feature_cache.Bucket(directory / name if self.config.cache_features else None, info,
                                      merge=not self.world.active)
        splits = ["train", "val"] + (["test"] if self.spec.test else []) + (["old_val"] if self.continuation else [])
        workers = auto_workers(sum(len(self._split_samples(s)) for s in splits) // self.world.size,
                               self.config.workers)
        try:
            for split in splits:
                if split in self._embedded:
                    continue
                samples = self._split_samples(split)
                share = distributed.shard(len(samples), self.world)
                mine = [samples[i] for i in share] if self.world.active else samples
                result = embed(  # together, extraction is not stopped half-way: the exchange below waits for all
                    self.model, mine, lambda subset: self._eval_loader(subset, workers), self.device, bucket,
                    Control() if self.world.active else self.control,
                    progress=lambda done, total, split=split: self.emit(Progress(f"embedding {split}", done, total)),
                    autocast_dtype=self.autocast_dtype,
                )
                if self.world.active:
                    result = merge_shares(distributed.gather((share, result), self.world))
                self._note_bad(samples, list(result.bad))
                self._embedded[split] = result
        finally:  # the splits' rows were copied out (mapped scratch files): the bucket's maps can go
            bucket.close()
        if bucket.warning:
            self.emit(Problem(bucket.warning))
        if self.config.cache_features and self.world.is_main:
            feature_cache.evict(directory, feature_cache.limit_bytes(), keep=name)
        if len(self._embedded["train"].labels) == 0:
            raise DataError("No training file could be read.", "Check the files in the folder.")

    def _split_samples(self, split: str) -> list[Sample]:
        """A split's files; "old_val" is the validation split of the run continued from."""
        if split == "old_val":
            assert self.continuation is not None
            return self.continuation.old_val
        return getattr(self.spec, split)

    def _micro_batch(self) -> int:
        """Files per forward pass in this process: a training micro-batch, and an evaluation batch (what memory
        was found to allow)."""
        return -(-distributed.per_process_batch(self.config.batch_size, self.world) // self.config.accumulate)

    def _eval_loader(self, samples, workers: int):
        return make_loader(self.pipeline.eval_dataset(samples), self._micro_batch(), workers, self.device)

    def _source(self) -> FeatureSource | FileSource:
        config = self.config
        if self.fast_path:
            return FeatureSource(self.model.head, self._embedded["train"], self._embedded["val"], config.batch_size,
                                 config.seed, self.device, self.world)
        workers = auto_workers(len(self.spec.train) // self.world.size, config.workers)
        val = [self.spec.val[i] for i in self._val_share()]
        return FileSource(self.model, self.pipeline.train_dataset(self.spec.train, self.augment, config.seed),
                          self.pipeline.eval_dataset(val), self.spec.train, val,
                          config.batch_size, workers, self.device, config.seed, self._note_bad,
                          stopping=lambda: self.control.cancelled, world=self.world, eval_batch=self._micro_batch())

    def _val_share(self) -> list[int]:
        """The validation files this process scores each epoch: all of them unless launched on many."""
        return distributed.shard(len(self.spec.val), self.world)

    def _validate(self, context: steps.StepContext, source) -> tuple[float, float]:
        """(loss, score) over every validation file; together, each process scores its share of the files
        (cached embeddings are everyone's: no share there) and the scores come from all the shares."""
        # together, only a training step's agreement stops the processes (a process leaving in the middle of
        # validation would leave the others waiting for its share)
        loss, score, outputs = steps.validate(context, source.module, source.val_batches(),
                                              interruptible=not self.world.active)
        if not self.world.active or self.fast_path:
            return loss, score
        share = self._val_share()
        mine = (outputs["probabilities"], outputs["labels"], [share[i] for i in outputs["indices"].tolist()])
        parts = distributed.gather(mine, self.world)
        if not any(len(labels) for _, labels, _ in parts):
            return float("nan"), 0.0
        probabilities = torch.cat([p for p, labels, _ in parts if len(labels)])
        labels = torch.cat([labels for _, labels, _ in parts if len(labels)])
        return self.objective.loss(probabilities, labels), self.objective.score(probabilities, labels)

    def _train_phase(self, index: int, phase: Phase, first: int, last: int, resume: bool) -> None:
        plan = freezing.apply(self.model, phase.unfreeze)
        source = self._source()
        optimizer = torch.optim.AdamW(freezing.param_groups(self.model, self.config.lr,
                                                            self.config.lr * self.config.backbone_lr_factor,
                                                            self.config.weight_decay))
        scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, warmup_cosine(max(1, phase.epochs * source.steps)))
        scaler = torch.amp.GradScaler("cuda", enabled=self.autocast_dtype == torch.float16)
        if resume:
            assert self.checkpoint is not None
            checkpoints.restore_optimisation(self.checkpoint, optimizer, scheduler, scaler)
            first = self.checkpoint["epoch"] + 1
        self.emit(PhaseStarted(phase.name, first, last, plan.trainable_blocks, plan.trainable_params))
        context = steps.StepContext(self.device, self.autocast_dtype, self.loss_fn, self.control, self.emit,
                                    self.objective, self.world, self.config.accumulate)
        trainable = distributed.wrap(source.module, self.world, self.device)  # per phase: its own parameters
        try:
            for epoch in range(first, last + 1):
                tick = time.perf_counter()
                seed_everything(derive_seed(self.config.seed, "epoch", epoch))  # dropout, SpecAugment: per epoch
                train_loss, train_acc = steps.train_epoch(context, trainable, source.train_batches(epoch),
                                                          source.steps, epoch, optimizer, scheduler, scaler)
                val_loss, val_acc = self._validate(context, source)
                old = self._old_score(context, source) if self.continuation else None
                self._end_epoch(epoch, index, phase, (train_loss, train_acc, val_loss, val_acc),
                                time.perf_counter() - tick, source, optimizer, scheduler, scaler, old)
        finally:
            source.close()

    def _old_score(self, context: steps.StepContext, source) -> float:
        """The forgetting meter: the continued run's validation files, scored with the model as it is now."""
        assert self.continuation is not None
        if self.fast_path:
            embedded = self._embedded["old_val"]
            batches = FeatureSource(source.module, embedded, embedded, self.config.batch_size, 0,
                                    self.device).val_batches()
        else:
            from tlstudio.core.training.sources import readable

            old_val = self.continuation.old_val
            batches = readable(self._eval_loader(old_val, 0), old_val, self._note_bad,
                               stopping=lambda: self.control.cancelled)
        return steps.validate(context, source.module, batches, interruptible=not self.world.active)[1]

    def _combined(self, new: float, old: float) -> float:
        """The score over the new and the old validation files together (each file counts once)."""
        assert self.continuation is not None
        n_new, n_old = len(self.spec.val), len(self.continuation.old_val)
        return (new * n_new + old * n_old) / max(n_new + n_old, 1)

    def _end_epoch(self, epoch: int, phase_index: int, phase: Phase, scores: tuple[float, float, float, float],
                   seconds: float, source, optimizer, scheduler, scaler, old: float | None = None) -> None:
        train_loss, train_acc, val_loss, val_acc = scores
        state = self.state
        name = self.objective.score_name
        # a continued run is chosen on everything it should know: the old and the new validation files
        chosen = val_acc if old is None else self._combined(val_acc, old)
        is_best = improves(self.objective, chosen, val_loss, state.best)
        if is_best:
            state.best = {"epoch": epoch, name: chosen, "loss": val_loss}
        lr = optimizer.param_groups[0]["lr"]
        row = {"epoch": epoch, "phase": phase.name, "train_loss": round(train_loss, 6),
               f"train_{name}": round(train_acc, 6), "val_loss": round(val_loss, 6), f"val_{name}": round(val_acc, 6),
               "lr": lr, "seconds": round(seconds, 4)}
        if old is not None:
            row[f"old_val_{name}"] = round(old, 6)
        state.history.append(row)
        state.epoch = epoch
        state.epochs_this_session += 1
        record = checkpoints.EpochRecord(
            epoch, phase_index, row, is_best, source.module, source.prefix, optimizer, scheduler, scaler,
            state.history, state.best, self.config.batch_size,
            state.elapsed + time.perf_counter() - self._session_start, self.config.accumulate)
        for listener in self.listeners:
            listener.on_epoch_end(record)
        self.emit(CheckpointSaved(str(self.run_dir.file("checkpoint.pt")), epoch))
        self.emit(EpochEnd(epoch, self.config.epochs, train_loss, train_acc, val_loss, val_acc, lr, seconds, is_best,
                           name, old))

    # -- the end --------------------------------------------------------------------------------------
    def _finish(self, status: str, seconds: float) -> dict[str, Any]:
        if not self.world.is_main:  # rank 0 scores the chosen model and writes it; the others are done
            return {"status": status}
        state = self.state
        best = checkpoints.load_best(self.run_dir)
        if best is not None:
            self.model.load_state_dict(best, strict=False)
        self.model.eval()
        raw_probabilities, labels, paths, outputs = self._predictions("val")
        if self.spec.regression:
            metrics, probabilities, temperature = self._regression_metrics(raw_probabilities, labels, paths), \
                raw_probabilities, 1.0
        else:
            calibration = calibrate(outputs["logits"], outputs["groups"], labels) if len(labels) else None
            temperature = float(calibration["temperature"]) if calibration else 1.0
            # what every later reader computes with the shipped model (Evaluate, predict, exports)
            probabilities = (pooled(outputs["logits"], outputs["groups"], temperature) if len(labels)
                             else raw_probabilities)
            metrics = report(probabilities, labels, self.spec.classes, paths)
            metrics["calibration"] = calibration
            metrics["val_accuracy"] = metrics["accuracy"]
            metrics["val_loss_calibrated"] = (round(self.objective.loss(probabilities, labels), 6)
                                              if len(labels) else None)
        # a stopped run leaves at once (no extra pass over training files); a completed resume adds it
        familiarity = (novelty.build(self._train_features(), outputs["features"])
                       if len(labels) and status == "completed" else None)
        metrics["novelty"] = ({k: round(v, 4) if isinstance(v, float) else v
                               for k, v in familiarity.items() if k != "bank"} if familiarity else None)
        metrics.update({
            "status": status,
            "task": self.spec.task,
            # the training curve's definition (history.csv), before calibration
            "val_loss": round(self.objective.loss(raw_probabilities, labels), 6) if len(labels) else None,
            "epochs": len(state.history),
            "epochs_planned": self.config.epochs,
            "best_epoch": state.best["epoch"],
            "train_seconds": round(seconds, 3),
            "device": str(self.device),
            "backbone": self.entry.name,
            "unfreeze_blocks": self.unfreeze,
            "fast_path": self.fast_path,
            "batch_size": self.config.batch_size,
            "accumulate": self.config.accumulate,
            "world_size": self.world.size,
            "classes": self.spec.classes,
            "sizes": {"train": len(self.spec.train), "val": len(labels), "test": len(self.spec.test)},
            "skipped_files": len(state.skipped),
        })
        if self.continuation:
            metrics["forgetting"] = self._forgetting()
        if self.spec.test:
            metrics["test"] = self._test_metrics(temperature)
            key = "mae" if self.spec.regression else "accuracy"
            metrics[f"test_{key}"] = metrics["test"][key]
        cpu_state = {k: v.detach().cpu() for k, v in self.model.state_dict().items()}
        self.run_dir.save_torch("model.pt", model_payload(
            self.entry.name, self.config.head, self.spec.classes, self.description, cpu_state,
            {"best_epoch": state.best["epoch"], "val_accuracy": metrics.get("val_accuracy"),
             "temperature": temperature, "novelty": familiarity, "task": self.spec.task,
             **({"target": self.spec.target} if self.spec.regression else {})},
        ))
        self.run_dir.write_json("metrics.json", metrics)
        self._write_predictions(probabilities, labels, paths)
        if status == "completed":  # model.pt holds the best weights now; a stopped run still needs them
            self.run_dir.file(checkpoints.BEST_FILE).unlink(missing_ok=True)
        return metrics

    def _forgetting(self) -> dict[str, Any]:
        """The old task's score before and after (at the chosen epoch), with a one-line verdict."""
        assert self.continuation is not None
        name = self.continuation.score_name
        best = next((row for row in self.state.history if row["epoch"] == self.state.best["epoch"]), None)
        after = best.get(f"old_val_{name}") if best else None
        summary = self.continuation.summary()
        return {**summary, f"old_val_{name}_after": after,
                "best_epoch_chosen_on": "the old and the new validation files together",
                "verdict": continuation.describe(summary[f"old_val_{name}_before"], after, name)}

    def _regression_metrics(self, values: torch.Tensor, targets: torch.Tensor, paths: list[str]) -> dict[str, Any]:
        metrics = regression_report(values, targets, paths, train_mean=self.spec.target["mean"])
        metrics.update({"val_mae": metrics["mae"], "val_rmse": metrics["rmse"], "val_r2": metrics["r2"],
                        "target": self.spec.target})
        return metrics

    def _test_metrics(self, temperature: float) -> dict[str, Any]:
        """The test/ split, scored as validation is, with the temperature fitted on validation."""
        raw, test_y, test_paths, test_out = self._predictions("test")
        if self.spec.regression:
            return regression_report(raw, test_y, test_paths, train_mean=self.spec.target["mean"])
        test_p = pooled(test_out["logits"], test_out["groups"], temperature)
        test = report(test_p, test_y, self.spec.classes, test_paths)
        if len(test_y):
            before, after = ece_with(test_out["logits"], test_out["groups"], test_y, temperature)
            test["calibration"] = {"ece_before": before, "ece_after": after}
        return test

    def _write_predictions(self, probabilities: torch.Tensor, labels: torch.Tensor, paths: list[str]) -> None:
        """One row per validation file: what the GUI shows when a confusion-matrix cell is clicked (for a
        regression: the scatter of predicted against true values)."""
        if self.spec.regression:  # rows are generated as they are written (streamed, not built in memory)
            values = zip(paths, labels.tolist(), probabilities.reshape(-1).tolist(), strict=True)
            self.run_dir.write_table("predictions.tsv", ["path", "true", "predicted", "error"],
                                     ((path, f"{t:.6g}", f"{v:.6g}", f"{v - t:.6g}") for path, t, v in values))
            return
        classes = self.spec.classes
        confidence, predicted = probabilities.max(dim=1) if len(labels) else (labels, labels)
        rows = zip(paths, labels.tolist(), predicted.tolist(), confidence.tolist(), strict=True)
        self.run_dir.write_table("predictions.tsv", ["path", "true", "predicted", "confidence"],
                                 ((path, classes[int(t)], classes[int(p)], f"{c:.4f}") for path, t, p, c in rows))

    def _predictions(self, split: str, samples: list[Sample] | None = None,
                     ) -> tuple[torch.Tensor, torch.Tensor, list[str], dict[str, Any]]:
        """(probabilities, labels, paths, raw outputs: window logits and per-file features) of a split (or of
        `samples`, full path only) with the model as it is now (the best weights)."""
        samples = getattr(self.spec, split) if samples is None else samples
        context = steps.StepContext(self.device, self.autocast_dtype, self.loss_fn, Control(), self.emit,
                                    self.objective)
        captured: list[torch.Tensor] = []  # the head's inputs: the features the novelty check compares
        hook = self.model.head.register_forward_pre_hook(lambda _m, args: captured.append(args[0].float().cpu()))
        try:
            if self.fast_path:
                embedded = self._embedded[split]
                source = FeatureSource(self.model.head, embedded, embedded, self.config.batch_size, 0, self.device)
                _, _, outputs = steps.validate(context, self.model.head, source.val_batches(), interruptible=False)
            else:
                loader = self._eval_loader(samples, 0)
                from tlstudio.core.training.sources import readable

                _, _, outputs = steps.validate(context, self.model, readable(loader, samples, self._note_bad),
                                               interruptible=False)
        finally:
            hook.remove()
        features = torch.cat(captured) if captured else torch.empty(0, 0)
        outputs["features"] = pool_groups(features, outputs["groups"]) if len(features) else features
        paths = [samples[i].path for i in outputs["indices"].tolist()]
        labels = outputs["labels"] if self.spec.regression else outputs["labels"].long()
        return outputs["probabilities"], labels, paths, outputs

    def _train_features(self) -> torch.Tensor:
        """Per-file features of (up to novelty.BANK_FILES) training files, read without augmentation."""
        if self.fast_path:  # the head's inputs are the embeddings: read the chosen files' rows, no pass over all
            embedded = self._embedded["train"]
            offsets = [0, *itertools.accumulate(embedded.counts)]
            chosen = novelty.evenly(len(embedded.kept), novelty.BANK_FILES).tolist()
            if not chosen:
                return torch.empty(0, 0)
            rows = torch.cat([embedded.features[offsets[i] : offsets[i + 1]] for i in chosen]).float()
            return pool_groups(rows, [embedded.counts[i] for i in chosen])
        train = self.spec.train
        chosen = [train[i] for i in novelty.evenly(len(train), novelty.FILE_BANK_FILES).tolist()]
        self.emit(Progress("reading training files for the familiarity check", 0, len(chosen)))
        features = self._predictions("train", chosen)[3]["features"]
        self.emit(Progress("reading training files for the familiarity check", len(chosen), len(chosen)))
        return features


HEADER_FILES = ("config.json", "labels.json", "dataset.json", "skipped.tsv", checkpoints.BEST_FILE)


def train(spec: DatasetSpec, config: TrainConfig, run: RunDir, on_event: Listener,
          control: Control | None = None, world: distributed.World = distributed.SINGLE) -> dict[str, Any]:
    """Train per `config` on `spec`, writing `run`; returns the final metrics.

    A run that fails before its first epoch leaves nothing behind (no half-made folder to trip over);
    the folder's lock is released however it ends. Launched on many processes (`world`), every process
    calls this; rank 0 holds the lock and writes."""
    trainer = None
    try:
        if world.is_main:
            run.acquire_lock()
        trainer = Trainer(spec, config, run, on_event, control, world=world)
        return trainer.run()
    except BaseException as exc:
        if world.is_main and not run.file("checkpoint.pt").exists():  # not one epoch saved: nothing to keep
            run.discard(HEADER_FILES)
            if isinstance(exc, StorageError):
                exc.hint = "Free some space or choose a writable folder, then start the run again."
        raise
    finally:
        if world.is_main:
            run.release_lock()
        distributed.leave()


def resume(run: RunDir, on_event: Listener, control: Control | None = None,
           world: distributed.World = distributed.SINGLE) -> dict[str, Any]:
    """Continue a cancelled, crashed or killed run from its last completed epoch, in the same folder."""
    if world.is_main:
        run.acquire_lock()
    try:
        settings = run.read_json("config.json")
        config = TrainConfig.from_dict(settings)
        spec = read_spec(run)
        recorded = int((settings.get("resolved") or {}).get("world_size", 1))
        if recorded != world.size:  # the batches per process, the shares and the schedule depend on it
            raise RunError(f"The run {run.path.name} trained on {recorded} process(es); this resume has "
                           f"{world.size}.", f"Resume it as it began: on {recorded} process(es) "
                           "(tlstudio train --resume RUN does so by itself).")
        checkpoint = checkpoints.load_checkpoint(run)
        if checkpoint is not None and checkpoint["epoch"] >= config.epochs:
            metrics_file = run.file("metrics.json")
            if metrics_file.is_file() and run.read_json("metrics.json").get("status") == "completed":
                raise RunError(f"The run {run.path.name} already finished all {config.epochs} epochs.",
                               "Start a new run to train more.")
        if not Path(spec.root).is_dir():
            raise DataError(f"The run's data folder {spec.root} is no longer there.",
                            "Put the folder back where it was to resume this run.")
        changed = changed_files(run.read_json("dataset.json"))
        if changed:
            raise DataError(
                f"{len(changed)} file(s) of this run changed or vanished since it started, e.g. {changed[0]}; "
                "resuming would not repeat the run.",
                "Put the files back as they were, or start a new run on the folder as it is now.")
        return Trainer(spec, config, run, on_event, control, checkpoint=checkpoint, world=world).run()
    finally:
        if world.is_main:
            run.release_lock()
        distributed.leave()


def merge_shares(parts: list[tuple[list[int], Embedded]]) -> Embedded:
    """One split's embeddings from every process's share (indices into the split), in file order."""
    rows: dict[int, tuple[torch.Tensor, Any]] = {}
    bad: list[tuple[int, str]] = []
    for share, part in parts:
        bad.extend((share[index], reason) for index, reason in part.bad)
        if not part.kept:
            continue
        for features, kept, label in zip(torch.split(part.features, part.counts), part.kept, part.labels,
                                         strict=True):
            rows[share[kept]] = (features, label)
    kept = sorted(rows)
    dim = int(rows[kept[0]][0].shape[1]) if kept else 0
    features = mapped.spill((rows[i][0] for i in kept), dim)
    labels = torch.stack([rows[i][1] for i in kept]) if kept else torch.empty(0, dtype=torch.long)
    return Embedded(features, [int(rows[i][0].shape[0]) for i in kept], labels, kept, sorted(bad))
