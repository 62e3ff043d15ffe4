"""Judging a trained run: on its own validation split, or on a new folder (how users notice drift)."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from tlstudio.core.data.scan import scan
from tlstudio.core.data.spec import changed_files, read_spec, target_tensor
from tlstudio.core.errors import DataError
from tlstudio.core.inference.metrics import report
from tlstudio.core.inference.predict import Predictor
from tlstudio.core.inference.regression import regression_report
from tlstudio.core.store.runs import RunDir


def evaluate_run(run: RunDir, data: str | Path | None = None, tta: bool = False,
                 progress: Callable[[int, int], None] | None = None) -> tuple[dict[str, Any], dict[str, Any] | None]:
    """(the result, and with `tta` the result with test-time augmentation), from one pass over the files."""
    predictor = Predictor(run)
    classes = predictor.classes
    result: dict[str, Any] = {"run": str(run.path), "backbone": None}
    saved = run.read_json("metrics.json") if run.file("metrics.json").is_file() else {}
    result["backbone"] = saved.get("backbone")
    if data is None:
        spec = read_spec(run)
        samples = spec.val
        changed = changed_files(run.read_json("dataset.json"))
        gone = [s.path for s in samples if not os.path.isfile(s.path)]
        if samples and len(gone) == len(samples):
            raise DataError(f"The run's validation files are gone (all {len(gone)}, e.g. {gone[0]}).",
                            f"Put the data folder back at {spec.root}, or evaluate on a folder: "
                            "tlstudio evaluate RUN FOLDER.")
        result["data"] = f"{spec.root} (the run's validation split)"
        unknown: list[str] = []
        paths = [s.path for s in samples]
        labels = [s.target for s in samples]
    else:
        spec = scan(data, val_split=0.0, check_file="auto",
                    task="regression" if predictor.regression else "classification")
        if spec.modality != predictor.modality:
            raise DataError(f"{data} holds {spec.modality} files but the model was trained on {predictor.modality}.")
        if spec.regression != predictor.regression:
            want = "a labels.csv of numbers (file,value)" if predictor.regression else "class folders"
            raise DataError(f"{data} does not fit this model: it was trained on {want}.",
                            f"Give a folder with {want}.")
    if data is not None and predictor.regression:
        kept = spec.train + spec.val + spec.test
        unknown, paths, labels = [], [s.path for s in kept], [s.target for s in kept]
        result["data"] = str(Path(data).resolve())
        result["skipped"] = [{"path": s.path, "reason": s.reason} for s in spec.skipped]
    elif data is not None:
        unknown = [name for name in spec.classes if name not in classes]
        everything = spec.train + spec.val + spec.test
        kept = [s for s in everything if spec.classes[s.label] in classes]
        if not kept:
            raise DataError(f"None of the class folders in {data} are classes this model knows ({', '.join(classes)}).",
                            "Name the sub-folders after the classes the model was trained on.")
        paths = [s.path for s in kept]
        labels = [classes.index(spec.classes[s.label]) for s in kept]
        result["data"] = str(Path(data).resolve())
        result["skipped"] = [{"path": s.path, "reason": s.reason} for s in spec.skipped]
    plain, augmented, errors = predictor.scores(paths, tta=tta, progress=progress)
    ok = [i for i in range(len(paths)) if i not in errors]
    result["files"] = len(ok)
    result["changed_since_training"] = changed if data is None else []
    result["unreadable"] = [{"path": paths[i], "reason": errors[i]} for i in sorted(errors)]
    result["unknown_classes"] = unknown
    scores = predictor.novelty[ok] if predictor.familiarity is not None and ok else None
    # drift: the share of files unlike the training files (about 5% on data like the validation files)
    result["unfamiliar_share"] = round(float((scores > 1).double().mean()), 4) if scores is not None else None
    result["trained_val_accuracy"] = saved.get("val_accuracy")
    result["task"] = "regression" if predictor.regression else "classification"
    truth = target_tensor([labels[i] for i in ok])

    def judged(probabilities: torch.Tensor, with_tta: bool) -> dict[str, Any]:
        chosen = [paths[i] for i in ok]
        if predictor.regression:
            target = saved.get("target") or {}
            scores = regression_report(probabilities[ok], truth, chosen, train_mean=target.get("mean"), worst=5000)
            return {**result, "tta": with_tta, "trained_val_mae": saved.get("val_mae"), "target": target, **scores}
        return {**result, "tta": with_tta, **report(probabilities[ok], truth, classes, chosen)}

    return judged(plain, False), (judged(augmented, True) if augmented is not None else None)
