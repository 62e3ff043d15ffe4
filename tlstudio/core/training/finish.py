"""The end of a run: score the chosen (best) weights, calibrate, and write model.pt, metrics.json and the
validation predictions: what every later reader (Evaluate, predict, exports) uses, so none can disagree."""

from __future__ import annotations

import itertools
from typing import Any

import torch

from tlstudio.core.control import Control
from tlstudio.core.data.audio_clips import pool_groups
from tlstudio.core.data.spec import Sample
from tlstudio.core.inference import novelty
from tlstudio.core.inference.calibration import calibrate, ece_with, pooled
from tlstudio.core.inference.metrics import report
from tlstudio.core.inference.regression import regression_report
from tlstudio.core.models.saved import model_payload
from tlstudio.core.training import checkpoints, continuation, steps
from tlstudio.core.training.events import Progress
from tlstudio.core.training.loop import Loop
from tlstudio.core.training.sources import eval_batches

Predictions = tuple[torch.Tensor, torch.Tensor, list[str], dict[str, Any]]


class Finisher:
    def __init__(self, loop: Loop) -> None:
        self.loop = loop
        self.run = loop.run  # read after the loop: a restart after running out of memory made a new one
        self.spec = self.run.spec
        self.folder = loop.folder

    def finish(self, status: str, seconds: float) -> dict[str, Any]:
        if not self.run.together.is_main:  # rank 0 scores the chosen model and writes it; the others are done
            return {"status": status}
        run, spec, state = self.run, self.spec, self.loop.state
        best = checkpoints.load_best(self.folder)
        if best is not None:
            run.model.load_state_dict(best, strict=False)
        run.model.eval()
        raw_probabilities, labels, paths, outputs = self.predictions("val")
        if spec.regression:
            metrics, probabilities, temperature = self._regression(raw_probabilities, labels, paths), \
                raw_probabilities, 1.0
        else:
            calibration = calibrate(outputs["logits"], outputs["groups"], labels) if len(labels) else None
            temperature = float(calibration["temperature"]) if calibration else 1.0
            # what every later reader computes with the shipped model (Evaluate, predict, exports)
            probabilities = (pooled(outputs["logits"], outputs["groups"], temperature) if len(labels)
                             else raw_probabilities)
            metrics = report(probabilities, labels, spec.classes, paths)
            metrics["calibration"] = calibration
            metrics["val_accuracy"] = metrics["accuracy"]
            metrics["val_loss_calibrated"] = (round(run.objective.loss(probabilities, labels), 6)
                                              if len(labels) else None)
        # a stopped run leaves at once (no extra pass over training files); a completed resume adds it
        familiarity = (novelty.build(self._train_features(), outputs["features"])
                       if len(labels) and status == "completed" else None)
        metrics["novelty"] = ({k: round(v, 4) if isinstance(v, float) else v
                               for k, v in familiarity.items() if k != "bank"} if familiarity else None)
        metrics.update({
            "status": status,
            "task": spec.task,
            # the training curve's definition (history.csv), before calibration
            "val_loss": round(run.objective.loss(raw_probabilities, labels), 6) if len(labels) else None,
            "epochs": len(state.history),
            "epochs_planned": run.config.epochs,
            "best_epoch": state.best["epoch"],
            "train_seconds": round(seconds, 3),
            "device": str(run.device),
            "backbone": run.entry.name,
            "unfreeze_blocks": run.unfreeze,
            "fast_path": run.fast_path,
            "batch_size": run.config.batch_size,
            "accumulate": run.config.accumulate,
            "world_size": run.together.size,
            "classes": spec.classes,
            "sizes": {"train": len(spec.train), "val": len(labels), "test": len(spec.test)},
            "skipped_files": len(self.loop.skipped.files),
        })
        if run.continuation:
            metrics["forgetting"] = self._forgetting()
        if spec.test:
            metrics["test"] = self._test_metrics(temperature)
            key = "mae" if spec.regression else "accuracy"
            metrics[f"test_{key}"] = metrics["test"][key]
        cpu_state = {k: v.detach().cpu() for k, v in run.model.state_dict().items()}
        self.folder.save_torch("model.pt", model_payload(
            run.entry.name, run.config.head, spec.classes, run.description, cpu_state,
            {"best_epoch": state.best["epoch"], "val_accuracy": metrics.get("val_accuracy"),
             "temperature": temperature, "novelty": familiarity, "task": spec.task,
             **({"target": spec.target} if spec.regression else {})},
        ))
        self.folder.write_json("metrics.json", metrics)
        self._write_predictions(probabilities, labels, paths)
        if status == "completed":  # model.pt holds the best weights now; a stopped run still needs them
            self.folder.file(checkpoints.BEST_FILE).unlink(missing_ok=True)
        return metrics

    def predictions(self, split: str, samples: list[Sample] | None = None) -> Predictions:
        """(probabilities, labels, paths, raw outputs: window logits and per-file features) of a split (or of
        `samples`, full path only) with the model as it is now (the best weights)."""
        run = self.run
        context = steps.StepContext(run.device, run.autocast_dtype, run.loss_fn, Control(), self.loop.emit,
                                    run.objective)
        captured: list[torch.Tensor] = []  # the head's inputs: the features the novelty check compares
        hook = run.model.head.register_forward_pre_hook(lambda _m, args: captured.append(args[0].float().cpu()))
        try:
            module, batches, files = eval_batches(run, self.loop.embedded, split, self.loop.skipped.note, samples)
            _, _, outputs = steps.validate(context, module, batches, interruptible=False)
        finally:
            hook.remove()
        features = torch.cat(captured) if captured else torch.empty(0, 0)
        outputs["features"] = pool_groups(features, outputs["groups"]) if len(features) else features
        paths = [files[i].path for i in outputs["indices"].tolist()]
        labels = outputs["labels"] if self.spec.regression else outputs["labels"].long()
        return outputs["probabilities"], labels, paths, outputs

    def _forgetting(self) -> dict[str, Any]:
        """The old task's score before and after (at the chosen epoch), with a one-line verdict."""
        plan = self.run.continuation
        assert plan is not None
        state, name = self.loop.state, plan.score_name
        best = next((row for row in state.history if row["epoch"] == state.best["epoch"]), None)
        after = best.get(f"old_val_{name}") if best else None
        summary = plan.summary()
        return {**summary, f"old_val_{name}_after": after,
                "best_epoch_chosen_on": "the old and the new validation files together",
                "verdict": continuation.describe(summary[f"old_val_{name}_before"], after, name)}

    def _regression(self, values: torch.Tensor, targets: torch.Tensor, paths: list[str]) -> dict[str, Any]:
        metrics = regression_report(values, targets, paths, train_mean=self.spec.target["mean"])
        metrics.update({"val_mae": metrics["mae"], "val_rmse": metrics["rmse"], "val_r2": metrics["r2"],
                        "target": self.spec.target})
        return metrics

    def _test_metrics(self, temperature: float) -> dict[str, Any]:
        """The test/ split, scored as validation is, with the temperature fitted on validation."""
        raw, test_y, test_paths, test_out = self.predictions("test")
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
            self.folder.write_table("predictions.tsv", ["path", "true", "predicted", "error"],
                                    ((path, f"{t:.6g}", f"{v:.6g}", f"{v - t:.6g}") for path, t, v in values))
            return
        classes = self.spec.classes
        confidence, predicted = probabilities.max(dim=1) if len(labels) else (labels, labels)
        rows = zip(paths, labels.tolist(), predicted.tolist(), confidence.tolist(), strict=True)
        self.folder.write_table("predictions.tsv", ["path", "true", "predicted", "confidence"],
                                ((path, classes[int(t)], classes[int(p)], f"{c:.4f}") for path, t, p, c in rows))

    def _train_features(self) -> torch.Tensor:
        """Per-file features of (up to novelty.BANK_FILES) training files, read without augmentation."""
        if self.run.fast_path:  # the head's inputs are the embeddings: read the chosen files' rows, no pass over all
            embedded = self.loop.embedded["train"]
            offsets = [0, *itertools.accumulate(embedded.counts)]
            chosen = novelty.evenly(len(embedded.kept), novelty.BANK_FILES).tolist()
            if not chosen:
                return torch.empty(0, 0)
            rows = torch.cat([embedded.features[offsets[i] : offsets[i + 1]] for i in chosen]).float()
            return pool_groups(rows, [embedded.counts[i] for i in chosen])
        train = self.spec.train
        chosen = [train[i] for i in novelty.evenly(len(train), novelty.FILE_BANK_FILES).tolist()]
        stage = "reading training files for the familiarity check"
        self.loop.emit(Progress(stage, 0, len(chosen)))
        features = self.predictions("train", chosen)[3]["features"]
        self.loop.emit(Progress(stage, len(chosen), len(chosen)))
        return features
