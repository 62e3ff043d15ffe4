"""Depth advice: should this data be learnt by feature extraction or by fine-tuning, and how deep?

The transfer-learning guides' two questions, answered with the user's own files on a subset: is the data
like what the network was pretrained on (a linear probe: the backbone frozen, 10 epochs on cached
features; a probe far from perfect means the features do not fit), and does unfreezing help (a short
fine-tune: 2 head epochs, then 2 with the top half of the blocks unfrozen, on the same files)? Features
that fit and a fine-tune that does not beat them by more than the subset's noise: feature extraction.
Otherwise fine-tuning, two-phase, deeper when the features fit badly or the data is large.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from pathlib import Path

from tlstudio.core.control import Cancelled, Control
from tlstudio.core.data.spec import DatasetSpec
from tlstudio.core.inference.novelty import evenly
from tlstudio.core.store.runs import RunDir
from tlstudio.core.training import engine
from tlstudio.core.training.config import TrainConfig
from tlstudio.core.training.events import BatchEnd, EpochEnd, ModelReady, Progress

PROBE_TRAIN = 300
PROBE_VAL = 150


@dataclass
class Recommendation:
    unfreeze: int
    schedule: str
    warmup_epochs: int
    why: str
    probe: dict  # the two probes' scores, the subset and its cost

    def to_dict(self) -> dict:
        return asdict(self)


def _subset(spec: DatasetSpec) -> DatasetSpec:
    train = [spec.train[i] for i in evenly(len(spec.train), PROBE_TRAIN).tolist()]
    val = [spec.val[i] for i in evenly(len(spec.val), PROBE_VAL).tolist()]
    return replace(spec, train=train, val=val, test=[])


def recommend(spec: DatasetSpec, config: TrainConfig, progress: Callable[[str, int, int], None] | None = None,
              control: Control | None = None) -> Recommendation:
    control = control or Control()
    sub = _subset(spec)
    folder = Path(tempfile.mkdtemp(prefix="tlstudio-recommend-"))
    regression = spec.regression
    key = "val_mae" if regression else "val_accuracy"
    try:
        base = replace(config, start_from="")
        linear_config = replace(base, unfreeze="0", schedule="one-phase", augment="none", epochs=10)
        tune_epochs = 4
        meter = _Meter(progress, len(sub.train), len(sub.val), tune_epochs)
        ready: list[ModelReady] = []

        def linear_events(event) -> None:
            if isinstance(event, ModelReady):
                ready.append(event)
            meter.linear(event)

        meter.start("linear probe")
        linear = engine.train(sub, linear_config, RunDir.create(folder / "linear", config.backbone), linear_events,
                              control)
        _completed(linear)
        blocks = len(ready[0].frozen_blocks) + len(ready[0].trainable_blocks) if ready else 8
        depth = max(1, blocks // 2)  # the top half of the backbone
        tune_config = replace(base, unfreeze=str(depth), schedule="two-phase", warmup_epochs=2, epochs=tune_epochs,
                              augment="light")
        meter.start(f"fine-tune probe (top {depth} blocks)")
        tuned = engine.train(sub, tune_config, RunDir.create(folder / "tuned", config.backbone), meter.tuned,
                             control)
        _completed(tuned)
        meter.start("probes done")
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    return _decide(spec, linear, tuned, depth, key, regression, blocks)


class _Meter:
    """The probes' progress in one unit, files through the network (a training pass counts 3: forward and
    backward), so the window's bar and ETA move evenly: the linear probe's extraction reads the subset once,
    the fine-tune probe trains on it for a few epochs and validates each one."""

    def __init__(self, report: Callable[[str, int, int], None] | None, train: int, val: int, epochs: int) -> None:
        self.report, self.stage, self.done = report, "", 0
        self.extraction = train + val
        self.training = 3 * train
        self.per_epoch = self.training + val
        self.total = self.extraction + epochs * self.per_epoch

    def start(self, stage: str) -> None:
        self.stage = stage
        if stage == "probes done":
            self.done = self.total
        self._say()

    def linear(self, event) -> None:
        if isinstance(event, Progress) and event.stage.startswith("embedding"):
            offset = 0 if event.stage.endswith("train") else self.extraction - event.total
            self.done = min(self.extraction, offset + event.done)
            self._say()

    def tuned(self, event) -> None:
        if isinstance(event, BatchEnd):
            self.done = self.extraction + (event.epoch - 1) * self.per_epoch + self.training * event.step // \
                max(event.steps_per_epoch, 1)
            self._say()
        elif isinstance(event, EpochEnd):
            self.done = self.extraction + event.epoch * self.per_epoch
            self._say()

    def _say(self) -> None:
        if self.report:
            self.report(self.stage, min(self.done, self.total), self.total)


def _completed(metrics: dict) -> None:
    """A probe stopped by the user returns its status only: the advice stops too."""
    if metrics.get("status") != "completed":
        raise Cancelled()


FITS = 0.85  # a linear probe at least this accurate (R² for regression): the pretrained features fit the data


def _decide(spec: DatasetSpec, linear: dict, tuned: dict, depth: int, key: str, regression: bool,
            blocks: int = 8) -> Recommendation:
    a, b = linear[key], tuned[key]
    n_val = linear["sizes"]["val"]
    n_train = len(spec.train)
    per_class = n_train / max(len(spec.classes), 1)
    if regression:
        noise = 0.05 * float(spec.target.get("std", 1.0))
        gain = a - b  # MAE: lower is better
        fit = linear.get("val_r2")
        fits = fit is not None and fit >= FITS
        shown = f"MAE {a:.3g} (linear probe, R² {fit if fit is not None else float('nan'):.2f}) vs {b:.3g} " \
                "(fine-tune probe)"
    else:
        noise = max(0.02, 2.0 / max(n_val, 1))  # two validation files of the subset
        gain = b - a
        fits = a >= FITS
        shown = f"{a:.1%} (linear probe) vs {b:.1%} (fine-tune probe)"
    probe = {"linear": a, "fine_tune": b, "metric": key, "probe_depth": depth, "blocks": blocks,
             "features_fit": fits, "train_files": linear["sizes"]["train"], "val_files": n_val,
             "seconds": round(linear["train_seconds"] + tuned["train_seconds"], 1)}
    size = (f"{n_train} training files" if regression else
            f"{n_train} training files (about {per_class:.0f} per class)")
    evidence = f"on {n_val} validation files of the probe, {shown}"
    if fits and gain <= noise:
        why = (f"Feature extraction is enough: the pretrained features already fit ({evidence}), and fine-tuning "
               f"the top {depth} blocks did not beat them. With {size} it trains in seconds and over-fits less.")
        return Recommendation(0, "one-phase", 2, why, probe)
    if fits:
        deeper = min(blocks, depth * 2) if n_train >= 5000 else depth
        why = (f"Fine-tuning pays here ({evidence}). With {size}: train the head for 2 epochs, then unfreeze "
               f"the top {deeper} blocks at a lower rate (two-phase), so the new head does not disturb them.")
        return Recommendation(deeper, "two-phase", 2, why, probe)
    why = (f"Your data is unlike what the network was pretrained on: a frozen network scores only "
           f"{a:.3g}" + (" MAE" if regression else "") + f" ({evidence}). Fine-tune all {blocks} blocks, head "
           f"first for 2 epochs (two-phase), with {size}.")
    return Recommendation(blocks, "two-phase", 2, why, probe)
