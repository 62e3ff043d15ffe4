"""A long task's progress as a user needs it: what is being done, how many of how many, the time left, and a
Cancel that works. One widget for the Evaluate and Try & export pages (a user waited on "Evaluating…" with
no count, no estimate and no way to stop)."""

from __future__ import annotations

import time
from collections.abc import Callable

from PySide6.QtWidgets import QHBoxLayout, QPushButton, QWidget

from tlstudio.gui.tasks import Task
from tlstudio.gui.widgets.contrast_bar import ContrastBar


def time_left(started: float, done: int, total: int) -> str:
    """ "ETA m:ss" once a rate can be told (a second in, or two steps done), else a word that says so."""
    from tlstudio.core.training.eta import at_rate, clock

    elapsed = time.perf_counter() - started
    if done <= 0 or total <= 0 or (elapsed < 1.0 and done < 2):
        return "estimating time left…"
    return f"ETA {clock(at_rate(elapsed, done, total - done))}"


class TaskProgress(QWidget):
    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.bar = ContrastBar()  # text readable wherever the bar ends
        self.cancel = QPushButton("Cancel")
        self.cancel.clicked.connect(self._cancel)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.bar, 1)
        layout.addWidget(self.cancel)
        self.task: Task | None = None
        self._on_cancel: Callable[[], None] | None = None
        self.setVisible(False)

    def follow(self, task: Task, words: str, on_cancel: Callable[[], None] | None = None, unit: str = "",
               scale: int = 1) -> None:
        """Show `task` until it ends: "`words` 12 / 300 `unit` · ETA 0:41" (counts divided by `scale`: bytes shown
        as MB). Cancel asks it to stop (or calls `on_cancel`, for work that cannot stop halfway and is dropped)."""
        self.task, self.words, self._on_cancel, self.unit, self.scale = task, words, on_cancel, unit, scale
        self.started = time.perf_counter()
        self.bar.setRange(0, 0)
        self.bar.setFormat(f"{words}")
        self.cancel.setEnabled(True)
        self.cancel.setText("Cancel")
        self.setVisible(True)
        task.progress.connect(lambda done, total: self._progress(task, done, total))
        task.done.connect(lambda: self._ended(task))

    def _progress(self, task: Task, done: int, total: int) -> None:
        if task is not self.task or not self.cancel.isEnabled():
            return
        self.bar.setRange(0, max(total // self.scale, 1))
        self.bar.setValue(done // self.scale)
        unit = f" {self.unit}" if self.unit else ""
        self.bar.setFormat(f"{self.words} %v / %m{unit} · {time_left(self.started, done, total)}")

    def retitle(self, words: str) -> None:
        """Other words for the same task (a scan that turns out to be a check of a remembered folder)."""
        self.words = words
        if self.bar.maximum() == 0:
            self.bar.setFormat(words)

    def _cancel(self) -> None:
        if self.task is None:
            return
        self.cancel.setEnabled(False)
        self.cancel.setText("Stopping…")
        self.bar.setFormat(f"Stopping: {self.words.rstrip('…').lower()}…")
        if self._on_cancel is not None:
            self._on_cancel()
        else:
            self.task.cancel()

    def _ended(self, task: Task) -> None:
        if task is self.task:
            self.task = None
            self.setVisible(False)
