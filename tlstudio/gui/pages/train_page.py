"""Step 3, Train: live curves, progress with throughput and ETA, pause/resume/stop, the event log."""

from __future__ import annotations

import copy
import time
from pathlib import Path

from PySide6.QtCore import Signal
from PySide6.QtWidgets import QHBoxLayout, QLabel, QPlainTextEdit, QProgressBar, QPushButton, QVBoxLayout, QWidget

from tlstudio.core.training import eta
from tlstudio.core.training import events as ev
from tlstudio.gui.plots import TrainingPlots
from tlstudio.gui.state import StudioState
from tlstudio.gui.worker import TrainingSession, TrainWorker


class TrainPage(QWidget):
    error = Signal(str, str)
    finished = Signal(object)  # metrics or None
    epoch_ended = Signal(int)

    def __init__(self, state: StudioState, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.state = state
        self.session: TrainingSession | None = None
        self.run_path: Path | None = None
        self.plots = TrainingPlots()
        self.status = QLabel("Choose data and a model, then press Train.")
        self.status.setWordWrap(True)
        self.bar = QProgressBar()
        self.bar.setFormat("%p%")
        self.start_button = QPushButton("Start")
        self.start_button.setObjectName("primary")
        self.pause_button = QPushButton("Pause")
        self.pause_button.setCheckable(True)
        self.stop_button = QPushButton("Stop")
        self.stop_button.setToolTip("Stops after the current batch; the best weights so far are kept.")
        self.log = QPlainTextEdit()
        self.log.setReadOnly(True)
        self.log.setMaximumBlockCount(2000)
        self.log.setMaximumHeight(130)
        self.pause_button.toggled.connect(self._pause)
        self.stop_button.clicked.connect(self.stop)
        buttons = QHBoxLayout()
        for widget in (self.start_button, self.pause_button, self.stop_button):
            buttons.addWidget(widget)
        buttons.addWidget(self.bar, 1)
        layout = QVBoxLayout(self)
        layout.addWidget(QLabel("<h2>3 · Train</h2>"))
        layout.addLayout(buttons)
        layout.addWidget(self.status)
        layout.addWidget(self.plots, 1)
        layout.addWidget(self.log)
        self._set_running(False)

    def _set_running(self, running: bool) -> None:
        self.start_button.setEnabled(not running)
        self.pause_button.setEnabled(running)
        self.stop_button.setEnabled(running)
        if not running:
            self.pause_button.setChecked(False)

    def start(self, run_path: Path, config=None) -> TrainingSession:
        """Start a run in a worker thread; the previous run's curves stay, faint, for comparison."""
        if self.session is not None and self.session.is_running():
            raise RuntimeError("a run is already in progress")
        if self.run_path is not None and self.plots.epochs:
            self.plots.add_old_run(f"run {self.plots.old_runs() + 1}", copy.deepcopy(self.plots.epochs))
        self.plots.reset()
        self.run_path = run_path
        config = copy.deepcopy(config or self.state.config)
        self.epochs = config.epochs
        self.epoch_started = time.perf_counter()
        self.bar.setRange(0, self.epochs)
        self.bar.setValue(0)
        self.log.appendPlainText(f"— New run: {run_path}")
        worker = TrainWorker(self.state.spec, config, run_path)
        worker.event.connect(self._on_event)
        worker.batches.connect(self._on_batches)
        worker.failed.connect(self._on_failed)
        worker.done.connect(self._on_done)
        self.session = TrainingSession(worker)
        self.state.set_training(True)
        self._set_running(True)
        self.session.start()
        return self.session

    def _pause(self, paused: bool) -> None:
        if self.session is None:
            return
        if paused:
            self.session.pause()
            self.status.setText("Paused. Press Pause again to continue.")
        else:
            self.session.resume()

    def stop(self) -> None:
        if self.session is not None:
            self.session.stop()
            self.status.setText("Stopping after this batch…")

    def shutdown(self, wait_ms: int = 30000) -> None:
        if self.session is not None and self.session.is_running():
            self.session.stop(wait_ms)

    # -- events from the worker (GUI thread) ----------------------------------------------------------
    def _on_batches(self, batches: list) -> None:
        self.plots.add_batches(batches)
        last = batches[-1]
        left = eta.seconds_left(last, time.perf_counter() - self.epoch_started, self.epochs)
        self.bar.setValue(last.epoch - 1)
        self.status.setText(f"Epoch {last.epoch} of {self.epochs} · batch {last.step}/{last.steps_per_epoch} · "
                            f"loss {last.loss:.3f} · {last.samples_per_s:.0f} samples/s · ETA {eta.clock(left)}")

    def _on_event(self, event) -> None:
        if isinstance(event, ev.ModelReady):
            blocks = ", ".join(event.trainable_blocks) or "none"
            self.log.appendPlainText(f"{event.backbone} on {event.device}: trainable blocks {blocks} + head; "
                                     f"{event.trainable_params:,} of {event.total_params:,} parameters train"
                                     + (" (fast path: embeddings computed once)" if event.fast_path else ""))
        elif isinstance(event, ev.Progress):
            self.status.setText(f"{event.stage.capitalize()}: {event.done} / {event.total}")
        elif isinstance(event, ev.PhaseStarted):
            self.log.appendPlainText(f"Phase '{event.phase}': epochs {event.first_epoch}–{event.last_epoch}")
            self.epoch_started = time.perf_counter()
        elif isinstance(event, ev.EpochEnd):
            self.plots.add_epoch({"epoch": event.epoch, "train_loss": event.train_loss,
                                  "val_loss": event.val_loss, "train_acc": event.train_acc,
                                  "val_acc": event.val_acc})
            self.bar.setValue(event.epoch)
            self.log.appendPlainText(f"Epoch {event.epoch}: train loss {event.train_loss:.4f} acc "
                                     f"{event.train_acc:.3f} · val loss {event.val_loss:.4f} acc "
                                     f"{event.val_acc:.3f}{'  ★ best' if event.is_best else ''}")
            self.epoch_started = time.perf_counter()
            self.epoch_ended.emit(event.epoch)
        elif isinstance(event, ev.Problem):
            self.log.appendPlainText(f"⚠ {event.message} " + ", ".join(Path(f).name for f in event.files[:5]))
        elif isinstance(event, ev.Finished):
            if event.metrics:
                self.status.setText(f"{'Finished' if event.status == 'completed' else 'Stopped'}: validation "
                                    f"accuracy {event.metrics['val_accuracy']:.1%} (best epoch "
                                    f"{event.metrics['best_epoch']}), {event.metrics['train_seconds']:.1f} s.")
            else:
                self.status.setText("Stopped before the first epoch ended.")

    def _on_failed(self, message: str, hint: str) -> None:
        self.status.setText(f"Training stopped: {message}")
        self.error.emit(message, hint)

    def _on_done(self, metrics) -> None:
        self._set_running(False)
        self.state.set_training(False)
        self.plots.redraw()
        if metrics and self.run_path is not None:
            self.state.add_run(self.run_path, metrics)
            self.state.set_run(self.run_path)
        self.finished.emit(metrics)
