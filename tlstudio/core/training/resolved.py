"""Set-up: what a run resolves before its first batch (device, model, pipeline, phases, processes), once.

`resolve()` returns a frozen `ResolvedRun`; the loop, its callbacks and the finisher read it and never
re-derive a setting. Only a restart after running out of memory makes a new one (a fresh model).
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from tlstudio import __version__
from tlstudio.core import devices
from tlstudio.core.data.loaders import make_loader
from tlstudio.core.data.pipelines import AudioPipeline, ImagePipeline
from tlstudio.core.data.spec import DatasetSpec, Sample
from tlstudio.core.errors import ConfigError, DataError, RunError
from tlstudio.core.media.audio import AudioSettings
from tlstudio.core.models import freezing
from tlstudio.core.models.registry import get_entry
from tlstudio.core.models.transfer_model import TransferModel, build_model
from tlstudio.core.models.weights import pretrained_state, sha256_of
from tlstudio.core.store.runs import RunDir
from tlstudio.core.training import continuation, distributed
from tlstudio.core.training.config import TrainConfig
from tlstudio.core.training.events import Listener, Progress
from tlstudio.core.training.objective import Objective, objective_for
from tlstudio.core.training.together import Together


@dataclass(frozen=True)
class Phase:
    name: str
    unfreeze: int
    epochs: int


@dataclass(frozen=True)
class ResolvedRun:
    spec: DatasetSpec  # as trained: a continued run's rehearsal files included
    config: TrainConfig
    entry: Any
    pipeline: ImagePipeline | AudioPipeline
    description: dict[str, Any]  # the preprocessing, as labels.json and every export carry it
    together: Together
    autocast_dtype: torch.dtype | None
    model: TransferModel
    weights_id: str
    unfreeze: int
    augment: str
    fast_path: bool  # frozen backbone, no augmentation: the head trains on cached embeddings
    phases: tuple[Phase, ...]
    objective: Objective
    continuation: continuation.Continuation | None

    @property
    def device(self) -> torch.device:
        return self.together.device

    @property
    def loss_fn(self) -> torch.nn.Module:
        return self.objective.loss_fn

    def micro_batch(self) -> int:
        """Files per forward pass in this process: a training micro-batch, and an evaluation batch (what memory
        was found to allow)."""
        return -(-self.together.batch(self.config.batch_size) // self.config.accumulate)

    def eval_loader(self, samples: list[Sample], workers: int):
        return make_loader(self.pipeline.eval_dataset(samples), self.micro_batch(), workers, self.device)

    def split_samples(self, split: str) -> list[Sample]:
        """A split's files; "old_val" is the validation split of the run continued from."""
        if split == "old_val":
            assert self.continuation is not None
            return self.continuation.old_val
        return getattr(self.spec, split)

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


def resolve(spec: DatasetSpec, config: TrainConfig, world: distributed.World, emit: Listener,
            recorded_weights: str | None = None) -> ResolvedRun:
    """Check and resolve everything before the first batch. `recorded_weights`: a resumed run's backbone, which
    must be the one its saved epochs learnt on."""
    config.validate()
    entry = get_entry(config.backbone)
    plan = None
    if config.start_from:  # old and new classes, rehearsal files, the forgetting meter's files
        spec, plan = continuation.plan(spec, config.start_from, config.rehearsal, config.seed, entry.name)
    if spec.modality == "image" and entry.modality == "audio":
        raise ConfigError(f"{entry.name} is a sound encoder and cannot read images.",
                          "Choose an image backbone such as mobilenet_v2 (see `tlstudio backbones`).")
    pipeline: ImagePipeline | AudioPipeline
    if spec.modality == "audio":
        pipeline = AudioPipeline(AudioSettings(window_seconds=config.window_seconds),
                                 "raw" if entry.modality == "audio" else "logmel")
    else:
        pipeline = ImagePipeline(entry.preprocess())
    if not spec.val:
        raise DataError("There are no validation files, so the run could not be judged.",
                        "Use a validation share above 0 (--val-split 0.2) or add a val/ folder.")
    device = distributed.local_device(world, torch.device(devices.resolve(config.device)))
    distributed.join(world, device)
    model = fresh_model(entry, config, spec, plan, emit)  # reads the weights file: a missing one is explained here
    weights = _weights_id(entry, config, plan)
    if recorded_weights and recorded_weights != weights:
        raise RunError(f"The weights this run started from changed since ({recorded_weights} then, {weights} now); "
                       "resuming would mix two models.", "Start a new run (with --from again, if it continued "
                       "another run).")
    unfreeze = freezing.parse_unfreeze(config.unfreeze, len(model.blocks))
    augment = config.resolved_augment(unfreeze)
    if config.schedule == "two-phase":
        phases = (Phase("head", 0, config.warmup_epochs),
                  Phase("fine-tune", unfreeze, config.epochs - config.warmup_epochs))
    else:
        phases = (Phase("train", unfreeze, config.epochs),)
    run = ResolvedRun(spec, config, entry, pipeline, pipeline.describe(), Together(world, device),
                      autocast_dtype(device, config.amp), model, weights, unfreeze, augment,
                      unfreeze == 0 and augment == "none" and config.schedule == "one-phase", phases,
                      objective_for(spec.task, spec.target, config.label_smoothing), plan)
    place(model, run)
    return run


def fresh_model(entry: Any, config: TrainConfig, spec: DatasetSpec,
                plan: continuation.Continuation | None, emit: Listener) -> TransferModel:
    """The model as a run starts: pretrained (or seeded random) backbone and a seeded new head. Made again only
    when a run restarts after running out of memory, so no copy of the weights is kept for that rare case."""
    seed_everything(config.seed)
    backbone_state = None if plan else pretrained_state(
        entry, config.pretrained, progress=lambda done, total: emit(Progress("download weights", done, total)))
    model = build_model(entry, len(spec.classes), config.head, backbone_state,
                        target=spec.target if spec.regression else None)
    if plan:
        continuation.load_into(model, plan, spec.classes)
    return model


def place(model: TransferModel, run: ResolvedRun) -> TransferModel:
    """The model on the run's device, channels-last, with its front end (and activation checkpointing)."""
    model.frontend = run.pipeline.frontend(run.augment)
    model.to(run.device, memory_format=torch.channels_last)
    if run.config.checkpointing and not run.fast_path:
        from tlstudio.core.models import checkpointing

        checkpointing.enable(model.backbone, model.blocks)
    return model


def _weights_id(entry: Any, config: TrainConfig, plan: continuation.Continuation | None) -> str:
    if plan:  # the old run's (perhaps fine-tuned) backbone: its own cache entries
        return f"run-{sha256_of(Path(plan.source) / 'model.pt')[:16]}"
    if config.pretrained == "imagenet":
        return entry.weights_filename
    if config.pretrained == "none":
        return f"random-seed{config.seed}"
    return f"file-{sha256_of(Path(config.pretrained))[:16]}"


def write_header(run: ResolvedRun, folder: RunDir) -> None:
    """config.json (the settings and what they resolved to) and labels.json, before the first epoch."""
    spec, config = run.spec, run.config
    folder.write_json("config.json", {
        **config.to_dict(),
        # the split is the data set's (DatasetSpec.split_settings, set where the data is shown): recorded as is
        "val_split": spec.split_settings.get("val_split", config.val_split),
        "group_by": spec.split_settings.get("group_by", config.group_by),
        "resolved": {
            "device": str(run.device),
            "unfreeze_blocks": run.unfreeze,
            "augment": run.augment,
            "fast_path": run.fast_path,
            "weights": run.weights_id,
            "amp": str(run.autocast_dtype).replace("torch.", "") if run.autocast_dtype else "off",
            "world_size": run.together.size,
            "batch_per_process": run.together.batch(config.batch_size),
            "split": {"source": spec.split_source, **spec.split_settings, "grouping": spec.grouping},
            **({"continued_from": run.continuation.summary()} if run.continuation else {}),
        },
        "tlstudio_version": __version__,
        "torch_version": torch.__version__,
    })
    folder.write_json("labels.json", {"classes": spec.classes, **run.description})
