"""The one printer: engine events and run summaries as terminal text (a progress bar, or plain lines in logs)."""

from __future__ import annotations

import sys
import time
from typing import Any, TextIO


def human(n: float) -> str:
    """A count as 3.5M: the backbones table's parameter column."""
    for unit in ("", "K", "M", "G"):
        if abs(n) < 1000:
            return f"{n:.1f}{unit}" if unit else f"{n:.0f}"
        n /= 1000
    return f"{n:.1f}T"


class ConsolePrinter:
    """Turns engine events into a progress bar (on a terminal) or plain lines (in logs)."""

    def __init__(self, stream: TextIO | None = None, quiet: bool = False) -> None:
        self.stream = stream or sys.stdout
        self.tty = self.stream.isatty()
        self.quiet = quiet
        self.epochs = 0
        self.epoch_started = time.perf_counter()
        self.last_draw = 0.0
        self.last_progress_pct: dict[str, int] = {}

    def _line(self, text: str) -> None:
        if self.tty:
            self.stream.write("\r\033[K")
        self.stream.write(text + "\n")
        self.stream.flush()

    def _status(self, text: str) -> None:
        if self.tty:
            self.stream.write("\r\033[K" + text)
            self.stream.flush()

    def __call__(self, event: Any) -> None:
        from tlstudio.core.training import eta
        from tlstudio.core.training import events as ev

        if isinstance(event, ev.RunStarted):
            self.epochs = int(event.config["epochs"])
            sizes = event.sizes
            self._line(f"Run folder: {event.run_dir}")
            self._line(f"Classes ({len(event.classes)}): {', '.join(event.classes)}")
            kind = "Sound clips" if event.modality == "audio" else "Images"
            self._line(f"{kind}: {sizes['train']} train, {sizes['val']} validation"
                       + (f", {sizes['test']} test" if sizes.get("test") else ""))
        elif isinstance(event, ev.ModelReady):
            trainable = ", ".join(event.trainable_blocks) if event.trainable_blocks else "none"
            share = 100 * event.trainable_params / max(event.total_params, 1)
            self._line(f"Backbone {event.backbone} on {event.device}: {len(event.frozen_blocks)} block(s) frozen, "
                       f"trainable blocks: {trainable} + new head")
            self._line(f"Trainable parameters: {event.trainable_params:,} of {event.total_params:,} ({share:.1f}%)"
                       + ("  [fast path: embeddings computed once, then only the head trains]"
                          if event.fast_path else ""))
        elif isinstance(event, ev.PhaseStarted):
            self._line(f"Phase '{event.phase}': epochs {event.first_epoch}-{event.last_epoch}, "
                       f"{event.trainable_params:,} trainable parameters")
            self.epoch_started = time.perf_counter()
        elif isinstance(event, ev.Progress | ev.BatchEnd) and self.quiet:
            return  # --quiet: epochs, problems and the summary only
        elif isinstance(event, ev.Progress):
            self._progress(event)
        elif isinstance(event, ev.BatchEnd):
            now = time.perf_counter()
            if now - self.last_draw < 0.1 and event.step != event.steps_per_epoch:
                return
            self.last_draw = now
            filled = int(20 * eta.epoch_fraction(event))
            remaining = eta.seconds_left(event, now - self.epoch_started, self.epochs)
            self._status(f"epoch {event.epoch}/{self.epochs} [{'#' * filled}{'.' * (20 - filled)}] "
                         f"{event.step}/{event.steps_per_epoch} loss {event.loss:.4f} "
                         f"{event.samples_per_s:.0f} samples/s ETA {eta.clock(remaining)}")
        elif isinstance(event, ev.EpochEnd):
            best = "  *best" if event.is_best else ""
            score = "MAE" if event.score_name == "mae" else "acc"
            self._line(f"epoch {event.epoch:>3}/{event.epochs}  train loss {event.train_loss:.4f} "
                       f"{score} {event.train_score:.3f} | val loss {event.val_loss:.4f} {score} "
                       f"{event.val_score:.3f} | lr {event.lr:.2e} | {event.seconds:.2f}s{best}"
                       + (f" | old val {score} {event.old_val:.3f}" if event.old_val is not None else ""))
            self.epoch_started = time.perf_counter()
        elif isinstance(event, ev.Problem):
            self._line(f"warning: {event.message}")
            for path in event.files[:10]:
                self._line(f"  - {path}")
            if len(event.files) > 10:
                self._line(f"  ... and {len(event.files) - 10} more (see dataset.json in the run folder)")
        elif isinstance(event, ev.Finished):
            metrics = event.metrics
            if event.status == "cancelled" and metrics:
                self._line("Stopped early; the best weights so far were kept.")
            if metrics and metrics.get("task") == "regression":
                self._line(regression_lines(metrics))
            elif metrics:
                self._line(f"Validation accuracy {metrics['val_accuracy']:.4f} (best epoch {metrics['best_epoch']}"
                           f" of {metrics['epochs']}); trained in {metrics['train_seconds']:.1f}s on "
                           f"{metrics['device']}")
                for name, row in metrics["per_class"].items():
                    self._line(f"  {name:<20} precision {row['precision']:.3f}  recall {row['recall']:.3f}  "
                               f"f1 {row['f1']:.3f}  n={row['support']}")
                calibration = metrics.get("calibration")
                if calibration:
                    self._line(calibration_line(calibration))
                if metrics.get("test_accuracy") is not None:
                    self._line(f"Test accuracy {metrics['test_accuracy']:.4f} on {metrics['sizes']['test']} files "
                               "of test/ (kept apart: never used to choose the weights)")
            if metrics and metrics.get("forgetting"):
                forgetting = metrics["forgetting"]
                self._line(f"Forgetting meter ({forgetting['old_val_files']} validation files of the run continued "
                           f"from, {forgetting['rehearsal_files']} of its training files rehearsed): "
                           f"{forgetting['verdict']}")
            self._line(f"Saved to {event.run_dir}")

    def _progress(self, event: Any) -> None:
        total = event.total
        if total <= 0:
            self._status(f"{event.stage}...")
            return
        pct = int(100 * event.done / total)
        if event.stage.startswith("validating"):  # the epoch's line follows; only a terminal shows the pass
            if self.tty:
                self._status(f"{event.stage}: {event.done}/{total} ({pct}%)")
            return
        if self.tty:
            self._status(f"{event.stage}: {event.done}/{total} ({pct}%)")
            if event.done >= total:
                self._line(f"{event.stage}: {event.done}/{total} done")
        else:
            step = pct // 25
            if self.last_progress_pct.get(event.stage, -1) < step:
                self.last_progress_pct[event.stage] = step
                self._line(f"{event.stage}: {event.done}/{total} ({pct}%)")


def calibration_line(calibration: dict) -> str:
    """One line on how far the stated confidence is from the observed accuracy, and what was done."""
    if calibration["applied"]:
        return (f"Confidence calibrated: temperature {calibration['temperature']:.3f}, calibration error (ECE) "
                f"{calibration['ece_before']:.3f} -> {calibration['ece_after']:.3f} on validation (cross-fitted)")
    return (f"Confidence left as trained: calibration error (ECE) {calibration['ece_before']:.3f}; a fitted "
            f"temperature ({calibration['fitted_temperature']:.3f}) did not lower it on held-out halves")


def regression_lines(metrics: dict) -> str:
    """The end of a regression run: its errors in the target's unit, beside what guessing would score."""
    target = metrics.get("target") or {}
    name = target.get("name", "value")
    if metrics.get("val_mae") is None:
        return f"No validation file could be scored (best epoch {metrics['best_epoch']} of {metrics['epochs']})."
    lines = [f"Validation MAE {metrics['val_mae']:.4f} {name}, RMSE {metrics['val_rmse']:.4f}, R² "
             f"{metrics['val_r2'] if metrics['val_r2'] is not None else float('nan'):.3f} (best epoch "
             f"{metrics['best_epoch']} of {metrics['epochs']}); trained in {metrics['train_seconds']:.1f}s on "
             f"{metrics['device']}"]
    if metrics.get("mae_guessing_the_mean") is not None:
        lines.append(f"  always guessing the training mean ({target.get('mean', 0):.4g}) would give MAE "
                     f"{metrics['mae_guessing_the_mean']:.4f}")
    for row in metrics.get("largest_errors", [])[:3]:
        lines.append(f"  largest error: {row['path']} is {row['true']:.4g}, predicted {row['predicted']:.4g}")
    test = metrics.get("test")
    if test and test.get("mae") is not None:
        lines.append(f"Test MAE {test['mae']:.4f} on {test['files']} files of test/ (kept apart)")
    return "\n".join(lines)
