"""The learning-rate range test (Smith, 2017; fastai's lr_find): train briefly while the learning rate grows
exponentially, and read a good rate off the loss curve.

It runs the run's own set-up (the same backbone, freezing depth, batch source, augmentation and
backbone-rate factor) through the engine's public set-up (`Trainer.prepare()` and its loop), in a throw-away
run folder, so the suggestion is for the training the user is about to start, not for a stand-in.
"""

from __future__ import annotations

import math
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch

from tlstudio.core.control import Control
from tlstudio.core.data.spec import DatasetSpec
from tlstudio.core.errors import DataError
from tlstudio.core.training.config import TrainConfig

START, END = 1e-7, 1.0


@dataclass
class RangeTest:
    learning_rates: list[float]
    losses: list[float]  # smoothed (exponential moving average, bias-corrected)
    suggestion: float  # the rate where the smoothed loss falls fastest
    minimum: float  # the rate of the lowest smoothed loss (fastai's rule of thumb: use a tenth of it)
    stopped_early: bool  # the loss blew up (> 4x its minimum) before the last step

    def to_dict(self) -> dict:
        return {"learning_rates": self.learning_rates, "losses": self.losses, "suggestion": self.suggestion,
                "minimum": self.minimum, "stopped_early": self.stopped_early}


def suggest(learning_rates: list[float], losses: list[float]) -> tuple[float, float]:
    """(steepest descent, lowest loss) from a smoothed curve. The steepest point is looked for before the
    minimum only (after it the loss is on its way up), skipping the noisy first tenth of the curve."""
    if len(losses) < 5:
        raise DataError("The range test ended too soon to suggest a rate.", "Give it more steps (--steps).")
    lowest = min(range(len(losses)), key=losses.__getitem__)
    first = max(1, len(losses) // 10)
    if lowest <= first:
        return learning_rates[lowest] / 10, learning_rates[lowest]
    logs = [math.log10(lr) for lr in learning_rates]
    slopes = [(losses[i + 1] - losses[i - 1]) / (logs[i + 1] - logs[i - 1]) for i in range(first, lowest)]
    steepest = first + min(range(len(slopes)), key=slopes.__getitem__)
    return learning_rates[steepest], learning_rates[lowest]


def find_learning_rate(spec: DatasetSpec, config: TrainConfig, steps: int = 100,
                       progress: Callable[[int, int], None] | None = None,
                       control: Control | None = None, emit: Callable | None = None) -> RangeTest:
    from tlstudio.core.models import freezing
    from tlstudio.core.store.runs import RunDir
    from tlstudio.core.training.engine import Trainer

    control = control or Control()
    folder = Path(tempfile.mkdtemp(prefix="tlstudio-lr-find-"))
    try:
        loop = Trainer(spec, config, RunDir.create(folder / "run", config.backbone), emit or (lambda _e: None),
                       control).prepare()
        run = loop.run
        if run.fast_path:
            loop.embed()
        source = loop.source(run.phases[-1].unfreeze)
        groups = freezing.param_groups(run.model, config.lr, config.lr * config.backbone_lr_factor,
                                       config.weight_decay)
        shares = [group["lr"] / config.lr for group in groups]
        optimizer = torch.optim.AdamW(groups)
        scaler = torch.amp.GradScaler("cuda", enabled=run.autocast_dtype == torch.float16)  # as in training
        module = source.module
        module.train()
        context = loop.step_context()  # the training loop's own input placement (channels-last) and precision
        rates, smoothed = [], []
        average, best, blown = 0.0, math.inf, False
        step = 0
        try:
            while step < steps and not blown:
                control.checkpoint()
                before = step
                for batch in source.train_batches(step):  # a new epoch's order when the data runs out
                    control.checkpoint()
                    rate = START * (END / START) ** (step / max(steps - 1, 1))
                    for group, share in zip(optimizer.param_groups, shares, strict=True):
                        group["lr"] = rate * share
                    labels = batch["labels"].to(run.device)
                    with context.autocast():
                        loss = run.loss_fn(module(context.inputs(batch)).float(), labels)
                    optimizer.zero_grad(set_to_none=True)
                    scaler.scale(loss).backward()
                    scaler.step(optimizer)
                    scaler.update()
                    value = float(loss.detach())
                    average = 0.98 * average + 0.02 * value if math.isfinite(value) else math.inf
                    corrected = average / (1 - 0.98 ** (step + 1))
                    rates.append(rate)
                    smoothed.append(corrected)
                    best = min(best, corrected)
                    step += 1
                    if progress:
                        progress(step, steps)
                    if not math.isfinite(corrected) or corrected > 4 * best:
                        blown = True
                    if blown or step >= steps:
                        break
                if step == before:
                    raise DataError("No training file could be read for the range test.",
                                    "Check the files in the folder (the Data step lists what was skipped).")
        finally:
            source.close()
        finite = [(r, v) for r, v in zip(rates, smoothed, strict=True) if math.isfinite(v)]
        rates, smoothed = [r for r, _ in finite], [v for _, v in finite]
        steepest, lowest = suggest(rates, smoothed)
        return RangeTest(rates, smoothed, steepest, lowest, blown)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
