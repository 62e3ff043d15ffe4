"""Step 3, Train: live curves, progress with throughput and ETA, pause/resume/stop, the event log.

Pause and Stop act on the engine's Control directly. Pause is disabled once Stop was pressed (a paused,
stopping run would never wake up), and a stopped run can be continued ("Continue the stopped run"),
which resumes it in the same folder from its last saved epoch.
"""

from __future__ import annotations

import contextlib
import copy
import time
from pathlib import Path

from PySide6.QtCore import Signal
from PySide6.QtWidgets import (
    QHBoxLayout,
    QLabel,
    QPlainTextEdit,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from tlstudio.core.training import eta
from tlstudio.core.training import events as ev
from tlstudio.gui.messages import score_text
from tlstudio.gui.plots import TrainingPlots
from tlstudio.gui.state import StudioState, run_data_folder, same_folder
from tlstudio.gui.widgets.contrast_bar import ContrastBar
from tlstudio.gui.worker import TrainingSession, TrainWorker

MAX_OVERLAID = 3


def run_label(run_dir: str | Path) -> str:
    """A run as a person names it: backbone, depth and the time it started (not 'run 3')."""
    from tlstudio.core.store.runs import RunDir

    run = RunDir(Path(run_dir))
    config = run.read_json_or("config.json")
    if config is None:
        return run.path.name
    depth = (config.get("resolved") or {}).get("unfreeze_blocks", config.get("unfreeze"))
    what = "from scratch" if config.get("pretrained") == "none" else (
        "head only" if str(depth) == "0" else f"top {depth} blocks")
    stamp = time.strftime("%H:%M", time.localtime(run.started() or 0))
    return f"{config.get('backbone', '?')}, {what}, {stamp}"


class TrainPage(QWidget):
    error = Signal(str, str)
    paused_changed = Signal(bool)  # the window's status bar says paused, not "Training…"
    finished = Signal(object)  # metrics or None
    epoch_ended = Signal(int)
    run_stopped = Signal(str)  # a run that can be continued
    continue_on_new_data = Signal()  # "Continue on new data…": the window asks for the folder
    start_requested = Signal()  # Start: the window collects the Model page's settings and starts a run

    def __init__(self, state: StudioState, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.state = state
        self.session: TrainingSession | None = None
        self.run_path: Path | None = None
        self.comparison = False  # the run in progress is a comparison (the scratch twin), not the new model
        self.stopped_run: Path | None = None  # a stopped run that "Continue" resumes
        self.epochs = 1
        self.stage_started: dict[str, tuple[float, int]] = {}
        self.stage_now = ""  # the work under way: "training", "validating epoch N", "embedding train"...
        self.plots = TrainingPlots()
        self.status = QLabel("Choose data and a model, then press Start.")
        self.status.setWordWrap(True)
        self.bar = ContrastBar()
        self.bar.setFormat("%p%")
        self.start_button = QPushButton("Start")
        self.start_button.setObjectName("primary")
        self.start_button.clicked.connect(lambda: self.start_requested.emit())  # (never clicked's bool)
        self.pause_button = QPushButton("Pause")
        self.pause_button.setCheckable(True)
        self.pause_button.setToolTip("Pauses after the current batch; press again to continue.")
        self.stop_button = QPushButton("Stop")
        self.stop_button.setToolTip("Stops after the current batch; the best weights so far are kept.")
        self.continue_button = QPushButton("Continue the stopped run")
        self.continue_button.setToolTip("Resumes the stopped run in its own folder, from its last saved epoch.")
        self.continue_button.setVisible(False)
        self.continue_button.clicked.connect(lambda: self.continue_stopped())
        self.more_data_button = QPushButton("Continue on new data…")
        self.more_data_button.setToolTip("Teach the active model new files or classes without forgetting the old "
                                         "ones: it keeps its network, learns at a lower rate, rehearses some of "
                                         "its old training files, and scores its old validation files every "
                                         "epoch (the forgetting meter).")
        self.more_data_button.clicked.connect(lambda: self.continue_on_new_data.emit())
        self.log = QPlainTextEdit()
        self.log.setReadOnly(True)
        self.log.setMaximumBlockCount(2000)
        self.log.setMaximumHeight(130)
        self.log.setMinimumHeight(48)  # at a small window the plots keep the room
        self.log.setPlaceholderText("The run's messages appear here: what trains, each epoch's result, problems "
                                    "met.")
        self.pause_button.toggled.connect(self._pause)
        self.stop_button.clicked.connect(lambda: self.stop())
        buttons = QHBoxLayout()
        for widget in (self.start_button, self.pause_button, self.stop_button, self.continue_button):
            buttons.addWidget(widget)
        buttons.addWidget(self.bar, 1)
        layout = QVBoxLayout(self)
        layout.addWidget(QLabel("<h2>3 · Train</h2>"))
        layout.addLayout(buttons)
        status_row = QHBoxLayout()
        status_row.addWidget(self.status, 1)
        status_row.addWidget(self.more_data_button)
        layout.addLayout(status_row)
        layout.addWidget(self.plots, 1)
        layout.addWidget(self.log)
        self._set_running(False)
        state.run_changed.connect(self._run_changed)

    def _set_running(self, running: bool) -> None:
        self.start_button.setEnabled(not running)
        self.pause_button.setEnabled(running)
        self.stop_button.setEnabled(running)
        if not running:
            self.pause_button.blockSignals(True)
            self.pause_button.setChecked(False)
            self.pause_button.blockSignals(False)
            self.pause_button.setText("Pause")
        self.continue_button.setVisible(not running and self.stopped_run is not None)
        self.more_data_button.setEnabled(not running and self.state.run_dir is not None)

    def set_can_start(self, enabled: bool, reason: str = "") -> None:
        """Start on or off as the window decides (never while a run is going on), and why not."""
        self.start_button.setEnabled(enabled and not self.is_running())
        self.start_button.setToolTip(reason)

    def show_status(self, text: str) -> None:
        self.status.setText(text)

    def apply_theme(self, dark: bool) -> None:
        self.plots.apply_theme(dark)

    def is_running(self) -> bool:
        return self.session is not None and self.session.is_running()

    # -- views that follow the data and the active run --------------------------------------------------
    def clear(self) -> None:
        """Another data folder: nothing of the old data's runs stays on these plots."""
        if self.is_running():
            return
        self.plots.clear_old_runs()
        self.plots.reset()
        self.plots.redraw()
        self.stopped_run = None
        self.run_path = None
        self.bar.setValue(0)
        self.status.setText("New data: choose a model, then press Start.")
        self._set_running(False)

    def _run_changed(self, run_dir: Path | None) -> None:
        self.more_data_button.setEnabled(run_dir is not None and not self.is_running())
        if run_dir is None or self.is_running():
            return
        if self.run_path is not None and same_folder(run_dir, self.run_path) and self.plots.epochs:
            return  # already on show (the run just trained, with its batch curves): keep it
        self.show_run(Path(run_dir))

    def show_run(self, run_dir: Path) -> None:
        """The curves of a finished run (the active one, after opening a project or a run)."""
        from tlstudio.core.store.runs import RunDir

        run = RunDir(run_dir)
        history = run.read_history()
        planned = len(history)
        with contextlib.suppress(ValueError, TypeError):
            planned = int(run.read_json_or("config.json", {}).get("epochs", planned))
        self.plots.show_history(history, max(planned, len(history)))
        self._overlay_earlier_runs(run_dir)
        self.run_path = run_dir
        if history:
            forgetting = run.read_json_or("metrics.json", {}).get("forgetting") or {}
            self.plots.set_old_reference(forgetting.get("old_val_acc_before", forgetting.get("old_val_mae_before")))
            self.status.setText(f"Showing {run_label(run_dir)}: {len(history)} epoch(s)."
                                + (f" Forgetting meter: {forgetting['verdict']} (on {forgetting['old_val_files']} "
                                   "validation files of the run it continued)." if forgetting.get("verdict") else ""))

    def _overlay_earlier_runs(self, current: Path) -> None:
        """Earlier runs of the same data, dashed, named by backbone, depth and time."""
        from tlstudio.core.store.runs import RunDir

        self.plots.clear_old_runs()
        folder = self.state.folder
        runs = [Path(r) for r in self.state.project.runs]
        if any(same_folder(r, current) for r in runs):  # a finished run: only the runs made before it
            runs = runs[:[same_folder(r, current) for r in runs].index(True)]
        folder = run_data_folder(current) or folder
        earlier = [r for r in runs if same_folder(run_data_folder(r), folder)]
        for run in earlier[-MAX_OVERLAID:]:
            history = RunDir(run).read_history() if run.is_dir() else []
            if history:
                self.plots.add_old_run(run_label(run), history)

    # -- starting, pausing, stopping ----------------------------------------------------------------
    def start(self, run_path: Path, config=None, spec=None, comparison: bool = False) -> TrainingSession:
        """Start a run in a worker thread; earlier runs on the same data stay, dashed, for comparison.

        `spec` (default: the open data, less the files left out) lets a comparison train on another
        run's own split; a `comparison` run is added to the project but never becomes the active model."""
        if self.is_running():
            raise RuntimeError("a run is already in progress")
        config = copy.deepcopy(config or self.state.config)
        spec = spec if spec is not None else self.state.training_spec()
        self.stopped_run = None
        self._overlay_earlier_runs(run_path)
        worker = TrainWorker(spec, config, run_path)
        return self._launch(worker, run_path, config.epochs, comparison, f"— New run: {run_path}")

    def continue_stopped(self) -> TrainingSession | None:
        """Resume the stopped run from its last saved epoch, in its own folder."""
        run = self.stopped_run
        if run is None or self.is_running():
            return None
        from tlstudio.core.store.runs import RunDir

        try:
            epochs = int(RunDir(run).read_json_or("config.json", {}).get("epochs", 1))
        except (ValueError, TypeError):
            epochs = 1
        self.plots.show_history(RunDir(run).read_history(), epochs)
        worker = TrainWorker(None, self.state.config, run, resume=True)
        return self._launch(worker, run, epochs, self.comparison, f"— Continuing {run}", keep_curves=True)

    def _launch(self, worker: TrainWorker, run_path: Path, epochs: int, comparison: bool, note: str,
                keep_curves: bool = False) -> TrainingSession:
        if not keep_curves:
            self.plots.reset()
            self.plots.set_planned_epochs(epochs)
        self.run_path = run_path
        self.comparison = comparison
        self.epochs = epochs
        self.epoch_started = time.perf_counter()
        self.stage_started = {}
        self.bar.setRange(0, self.epochs)
        self.bar.setValue(len(self.plots.epochs))
        self.bar.setFormat("%p%")
        self.log.appendPlainText(note)
        self.status.setText("Starting: loading the network…")
        worker.event.connect(self._on_event)
        worker.batches.connect(self._on_batches)
        worker.failed.connect(self._on_failed)
        worker.done.connect(self._on_done)
        self.session = TrainingSession(worker)
        self.state.set_training(True)
        self._set_running(True)
        if worker.on_processes:  # the processes cannot be paused, only stopped
            self.pause_button.setEnabled(False)
            self.log.appendPlainText("Training on several processes together (one per device); Stop saves and "
                                     "ends the run, Continue resumes it on as many.")
        self.session.start()
        return self.session

    def _pause(self, paused: bool) -> None:
        if self.session is None or not self.is_running():
            return
        if paused:
            self.session.pause()
            self.pause_button.setText("Resume")
            self.status.setText("Paused after this batch. Press Resume to continue.")
            self.paused_changed.emit(True)
        else:
            self.session.resume()
            self.pause_button.setText("Pause")
            self.status.setText("Running again…")
            self.paused_changed.emit(False)

    def stop(self) -> None:
        if self.session is not None and self.is_running():
            self.session.stop()
            self.pause_button.setEnabled(False)  # pausing a stopping run would hold it for ever
            self.stop_button.setEnabled(False)
            stage = self.stage_now
            if stage.startswith("validating"):
                self.status.setText(f"Stopping after this validation pass: epoch {stage.split()[-1]}'s training "
                                    "is kept and saved…")
            elif stage.startswith("embedding"):
                self.status.setText("Stopping… the embeddings made so far are kept for the next run.")
            else:
                self.status.setText("Stopping after this batch… (the epochs finished so far are kept)")

    def shutdown(self, wait_ms: int = 30000) -> bool:
        """Cancel the run; with `wait_ms`, wait for its thread. True when no thread is left running."""
        if self.session is not None and self.session.is_running():
            return self.session.stop(wait_ms)
        return True

    # -- events from the worker (GUI thread) ----------------------------------------------------------
    def _on_batches(self, batches: list) -> None:
        self.plots.add_batches(batches)
        last = batches[-1]
        left = eta.seconds_left(last, time.perf_counter() - self.epoch_started, self.epochs)
        self.bar.setRange(0, self.epochs * 1000)
        self.bar.setValue(round(1000 * (last.epoch - 1 + eta.epoch_fraction(last))))
        self.bar.setFormat("%p%")
        self.stage_now = "training"
        if self.session is not None and (self.session.worker.control.paused or self.session.worker.control.cancelled):
            return
        self.status.setText(f"Epoch {last.epoch} of {self.epochs} · batch {last.step}/{last.steps_per_epoch} · "
                            f"loss {last.loss:.3f} · {last.samples_per_s:.0f} samples/s · ETA {eta.clock(left)}")

    def _on_progress(self, event: ev.Progress) -> None:
        """Embedding, downloads: the bar moves with the work, with an ETA from its pace so far."""
        now = time.perf_counter()
        started, first = self.stage_started.setdefault(event.stage, (now, event.done))
        total = max(event.total, 1)
        self.bar.setRange(0, total)
        self.bar.setValue(min(event.done, total))
        self.bar.setFormat(f"{event.stage.capitalize()}: %v / %m")
        done_here = event.done - first
        left = (now - started) / done_here * (event.total - event.done) if done_here > 0 else None
        self.stage_now = event.stage if event.done < event.total else ""
        if self.session is not None and self.session.worker.control.cancelled:
            return  # the words Stop chose stay until the run has stopped
        if self.session is not None and self.session.worker.control.paused:
            self.status.setText(f"Paused ({event.stage}: {event.done} / {event.total}). Press Resume to continue.")
            return
        self.status.setText(f"{event.stage.capitalize()}: {event.done} / {event.total}"
                            + (f" · ETA {eta.clock(left)}" if left is not None else " · estimating time left…"))

    def _on_event(self, event) -> None:
        if isinstance(event, ev.ModelReady):
            blocks = ", ".join(event.trainable_blocks) or "none"
            self.log.appendPlainText(f"{event.backbone} on {event.device}: trainable blocks {blocks} + head; "
                                     f"{event.trainable_params:,} of {event.total_params:,} parameters train"
                                     + (" (fast path: embeddings computed once)" if event.fast_path else ""))
        elif isinstance(event, ev.Progress):
            self._on_progress(event)
        elif isinstance(event, ev.PhaseStarted):
            self.log.appendPlainText(f"Phase '{event.phase}': epochs {event.first_epoch}–{event.last_epoch}")
            self.epoch_started = time.perf_counter()
            self.bar.setRange(0, self.epochs)
            self.bar.setValue(event.first_epoch - 1)
            self.bar.setFormat("%p%")
        elif isinstance(event, ev.EpochEnd):
            self.plots.set_score(event.score_name)
            self.plots.add_epoch({"epoch": event.epoch, "train_loss": event.train_loss,
                                  "val_loss": event.val_loss, "train_acc": event.train_score,
                                  "val_acc": event.val_score,
                                  **({"old_val": event.old_val} if event.old_val is not None else {})})
            self.bar.setRange(0, self.epochs)
            self.bar.setValue(event.epoch)
            self.bar.setFormat("%p%")
            score = "MAE" if event.score_name == "mae" else "acc"
            self.log.appendPlainText(f"Epoch {event.epoch}: train loss {event.train_loss:.4f} {score} "
                                     f"{event.train_score:.3f} · val loss {event.val_loss:.4f} {score} "
                                     f"{event.val_score:.3f}{'  ★ best' if event.is_best else ''}"
                                     + (f" · old validation {score} {event.old_val:.3f}"
                                        if event.old_val is not None else ""))
            self.epoch_started = time.perf_counter()
            self.epoch_ended.emit(event.epoch)
        elif isinstance(event, ev.Problem):
            self.log.appendPlainText(f"⚠ {event.message} " + ", ".join(Path(f).name for f in event.files[:5]))
        elif isinstance(event, ev.Finished):
            done = int((event.metrics or {}).get("epochs") or 0)  # the bar ends on the run, not on its last stage
            self.bar.setRange(0, max(self.epochs, 1))
            self.bar.setValue(min(done, max(self.epochs, 1)))
            self.bar.setFormat("Done" if event.status == "completed" else f"Stopped after {done} epoch(s)")
            self.stage_now = ""
            if event.metrics:
                forgetting = event.metrics.get("forgetting") or {}
                self.plots.set_old_reference(forgetting.get("old_val_acc_before",
                                                            forgetting.get("old_val_mae_before")))
                metrics = event.metrics
                kept = ("" if event.status == "completed" else
                        f" after epoch {metrics['epochs']} of {metrics['epochs_planned']}; kept: the model of epoch "
                        f"{metrics['best_epoch']} (the best so far) and a checkpoint to continue from")
                self.status.setText(f"{'Finished' if event.status == 'completed' else 'Stopped'}{kept}: validation "
                                    f"{score_text(metrics)} (best epoch {metrics['best_epoch']}), "
                                    f"{metrics['train_seconds']:.1f} s."
                                    + (f" Forgetting meter: {event.metrics['forgetting']['verdict']}."
                                       if event.metrics.get("forgetting") else ""))
            else:
                self.status.setText("Stopped before the first epoch ended.")

    def _on_failed(self, message: str, hint: str) -> None:
        self.status.setText(f"Training stopped: {message}")
        self.error.emit(message, hint)

    def _on_done(self, metrics) -> None:
        if self.session is not None:  # the worker has returned: let its thread end now, so a new run
            self.session.thread.quit()  # (or "Continue") can start at once
            self.session.thread.wait(5000)
        self.session_metrics = metrics
        stopped = bool(metrics) and metrics.get("status") == "cancelled" and self.run_path is not None \
            and (self.run_path / "checkpoint.pt").is_file()
        self.stopped_run = self.run_path if stopped else None
        self._set_running(False)
        self.state.set_training(False)
        self.plots.redraw()
        if metrics and (metrics.get("val_accuracy") is not None or metrics.get("val_mae") is not None) \
                and self.run_path is not None:
            self.state.add_run(self.run_path, metrics)
            if not self.comparison:  # the twin is a comparison, never the active model unless chosen
                self.state.set_run(self.run_path)
        if stopped:
            self.status.setText(self.status.text() + " Press “Continue the stopped run” to go on.")
            self.run_stopped.emit(str(self.run_path))
        self.finished.emit(metrics)
