"""Keep learning without forgetting: a run that starts from another run's model, on new data.

What limits forgetting here is what the continual-learning guides recommend first: start from the old
weights, a lower learning rate (config.continuation_defaults), and rehearsal: a share of the old training
files is mixed into the new training set. The old run's validation files are scored every epoch (the
forgetting meter), so the cost of the new data on the old task is seen, not guessed.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass
from typing import Any

import torch

from tlstudio.core.data.spec import DatasetSpec, Sample, read_spec
from tlstudio.core.data.splits import unit_hash
from tlstudio.core.errors import ConfigError, DataError, RunError
from tlstudio.core.store.runs import RunDir


@dataclass
class Continuation:
    source: str  # the run folder continued from
    state: dict[str, torch.Tensor]  # its trained weights
    old_classes: list[str]
    old_val: list[Sample]  # its validation files, labelled in this run's classes: the forgetting meter
    rehearsal: list[Sample]  # its training files mixed into this run's training set
    before: float | None  # the old model's validation score on those files, from its metrics.json
    score_name: str  # "acc" or "mae"
    added: list[str]  # classes this run adds

    def summary(self) -> dict[str, Any]:
        return {"from": self.source, "old_classes": self.old_classes, "added_classes": self.added,
                "old_val_files": len(self.old_val), "rehearsal_files": len(self.rehearsal),
                f"old_val_{self.score_name}_before": self.before}


def plan(spec: DatasetSpec, run_path: str, rehearsal_share: float, seed: int,
         backbone: str) -> tuple[DatasetSpec, Continuation]:
    """The new data's spec with the old and new classes (old ones first, in their order) and the rehearsal
    files added to training; and what the engine needs to start from the old model."""
    run = RunDir.open(run_path)
    payload = run.load_torch("model.pt")
    if not isinstance(payload, dict) or "state_dict" not in payload:
        raise RunError(f"{run.file('model.pt')} is not a finished studio model.", "Continue from a finished run.")
    if payload.get("backbone") != backbone:
        raise ConfigError(f"The run {run.path.name} was trained with {payload.get('backbone')}, not {backbone}.",
                          "Leave --backbone out when continuing a run.")
    old_task = payload.get("task", "classification")
    if old_task != spec.task:
        raise DataError(f"The run {run.path.name} is a {old_task}, but {spec.root} gives a {spec.task}.",
                        "Continue a run on data of the same kind (class folders, or a labels.csv of numbers).")
    old_spec = read_spec(run)
    if old_spec.modality != spec.modality:
        raise DataError(f"The run {run.path.name} learnt from {old_spec.modality} files; {spec.root} holds "
                        f"{spec.modality} files.")
    old_classes = list(payload["classes"])
    metrics = run.read_json("metrics.json") if run.file("metrics.json").is_file() else {}
    regression = spec.task == "regression"
    if regression:
        classes, added = list(spec.classes), []
        # the old head's scale is kept, so its outputs keep meaning the same numbers
        spec = dataclasses.replace(spec, target={**spec.target, "mean": payload["target"]["mean"],
                                                 "std": payload["target"]["std"]})
    else:
        added = [name for name in spec.classes if name not in old_classes]
        classes = old_classes + added
        index = {name: i for i, name in enumerate(classes)}

        def relabel(samples: list[Sample], names: list[str]) -> list[Sample]:
            return [dataclasses.replace(s, label=index[names[s.label]]) for s in samples]

        spec = dataclasses.replace(spec, classes=classes, train=relabel(spec.train, spec.classes),
                                   val=relabel(spec.val, spec.classes), test=relabel(spec.test, spec.classes))
        old_spec = dataclasses.replace(old_spec, train=relabel(old_spec.train, old_spec.classes),
                                       val=relabel(old_spec.val, old_spec.classes))
    present = {s.path for s in spec.train + spec.val + spec.test}
    new_train = {s.path for s in spec.train}
    on_disk = [s for s in old_spec.val if os.path.isfile(s.path)]
    if not on_disk:
        raise DataError(f"The validation files of {run.path.name} are gone, so forgetting could not be measured.",
                        f"Put its data folder back at {old_spec.root}.")
    old_val = [s for s in on_disk if s.path not in new_train]  # a file now trained on cannot measure forgetting
    if not old_val:
        raise DataError(f"Every validation file of {run.path.name} is a training file of the new data, so "
                        "forgetting could not be measured.",
                        "Continue on a folder of new files, or one with its own val/ folder.")
    leaked = {s.path for s in old_spec.train} & {s.path for s in spec.val + spec.test}
    if leaked:  # the model has seen them: scoring them would flatter it
        spec = dataclasses.replace(
            spec, val=[s for s in spec.val if s.path not in leaked],
            test=[s for s in spec.test if s.path not in leaked],
            warnings=[*spec.warnings, f"{len(leaked)} training file(s) of {run.path.name} fell in the new validation "
                      "or test split and were taken out of it (the model has seen them)."])
    chosen = [s for s in old_spec.train if os.path.isfile(s.path) and unit_hash(s.path, seed) < rehearsal_share]
    fresh = [s for s in chosen if s.path not in present]  # a resumed run has them in its training set already
    note = (f"Continuing {run.path.name}: {len(chosen)} of its {len(old_spec.train)} training files rehearsed, "
            f"its {len(old_val)} validation files scored every epoch.")
    spec = dataclasses.replace(spec, train=spec.train + fresh,
                               warnings=[w for w in spec.warnings if not w.startswith("Continuing ")] + [note])
    score_name = "mae" if regression else "acc"
    # the old run's own score is its score on these very files only when none was left out
    before = metrics.get("val_mae" if regression else "val_accuracy") if len(old_val) == len(old_spec.val) else None
    return spec, Continuation(str(run.path), payload["state_dict"], old_classes, old_val, chosen, before,
                              score_name, added)


def load_into(model: torch.nn.Module, continuation: Continuation, classes: list[str]) -> None:
    """The old weights into this run's model; the head's output rows follow the classes by name, and added
    classes keep their fresh initialisation."""
    own = model.state_dict()
    old = continuation.state
    same = {k: v for k, v in old.items() if k in own and own[k].shape == v.shape}
    model.load_state_dict(same, strict=False)
    rows = [(classes.index(name), i) for i, name in enumerate(continuation.old_classes) if name in classes]
    with torch.no_grad():
        for key, value in old.items():
            if key in own and key not in same and key.startswith("head.") and value.shape[1:] == own[key].shape[1:]:
                target = dict(model.named_parameters()).get(key)
                if target is None:
                    continue
                for new, previous in rows:
                    target[new] = value[previous]


def describe(before: float | None, after: float | None, score_name: str) -> str:
    """The one-line verdict: "old accuracy fell 0.96 -> 0.91" (or held, or rose; for regression the MAE)."""
    if before is None or after is None:
        return "The old validation files were scored, but the old run's own score is unknown."
    tolerance = 0.005 if score_name == "acc" else 0.01 * abs(before)  # an MAE is in the target's own unit
    if abs(after - before) < tolerance:
        verb = "held:"
    elif score_name == "mae":
        verb = "grew" if after > before else "fell"
    else:
        verb = "fell" if after < before else "rose"
    if score_name == "mae":
        return f"old MAE {verb} {before:.4g} -> {after:.4g}"
    return f"old accuracy {verb} {before:.2f} -> {after:.2f}"
