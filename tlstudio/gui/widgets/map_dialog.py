"""The embedding map in a window of its own: find clusters and suspicious files, look at them, correct them
(leave out or relabel, kept in the project; the folder never changes), and retrain in one click."""

from __future__ import annotations

import json
import time
from pathlib import Path

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QPixmap
from PySide6.QtWidgets import (
    QComboBox,
    QDialog,
    QHBoxLayout,
    QLabel,
    QListWidget,
    QPushButton,
    QSplitter,
    QVBoxLayout,
    QWidget,
)

from tlstudio.core.training.eta import at_rate, clock
from tlstudio.gui.plots import Legended
from tlstudio.gui.state import StudioState
from tlstudio.gui.tasks import Task
from tlstudio.gui.widgets.contrast_bar import ContrastBar
from tlstudio.gui.widgets.embedding_map import EmbeddingMapView


class MapDialog(QDialog):
    retrain_requested = Signal()
    ready = Signal(int)  # points drawn

    def __init__(self, state: StudioState, run_dir: Path, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.state = state
        self.run_dir = Path(run_dir)
        self.task: Task | None = None
        self.result: dict | None = None
        self.current: str | None = None
        self.setWindowTitle(f"Map of the files: {self.run_dir.name}")
        self.resize(1100, 700)
        self.view = EmbeddingMapView()
        self.view.point_chosen.connect(self.choose)
        self.status = QLabel("Reading the files…")
        self.status.setWordWrap(True)
        self.bar = ContrastBar()  # text readable wherever the bar ends
        self.suspects = QListWidget()
        self.suspects.setToolTip("Files whose nearest neighbours are nearly all of another class, which the model "
                                 "also predicts: the usual sign of a wrong label.")
        self.suspects.currentRowChanged.connect(self._suspect_chosen)
        self.picture = QLabel()
        self.picture.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.picture.setMinimumHeight(200)
        self.details = QLabel("Click a dot to see its file.")
        self.details.setWordWrap(True)
        self.leave_out = QPushButton("Leave out of training")
        self.leave_out.clicked.connect(self._toggle_left_out)
        self.new_label = QComboBox()
        self.relabel = QPushButton("Relabel")
        self.relabel.setToolTip("Kept in the project: the file stays where it is; the next run trains it as this "
                                "class.")
        self.relabel.clicked.connect(self._relabel)
        self.retrain = QPushButton("Retrain with these changes")
        self.retrain.setObjectName("primary")
        self.retrain.setToolTip("Train again with the same settings, without the files left out and with the new "
                                "labels.")
        self.retrain.clicked.connect(self._retrain)
        for widget in (self.leave_out, self.relabel, self.new_label):
            widget.setEnabled(False)
        side = QWidget()
        column = QVBoxLayout(side)
        column.addWidget(self.status)
        busy = QHBoxLayout()
        busy.addWidget(self.bar, 1)
        self.cancel = QPushButton("Cancel")
        self.cancel.setToolTip("Stop making the map (the files read so far are kept for the next time).")
        self.cancel.clicked.connect(lambda: self._cancel())
        busy.addWidget(self.cancel)
        column.addLayout(busy)
        column.addWidget(QLabel("<b>Look mislabelled</b>"))
        column.addWidget(self.suspects, 1)
        column.addWidget(self.picture)
        column.addWidget(self.details)
        row = QHBoxLayout()
        row.addWidget(self.new_label, 1)
        row.addWidget(self.relabel)
        column.addLayout(row)
        column.addWidget(self.leave_out)
        column.addWidget(self.retrain)
        splitter = QSplitter()
        splitter.addWidget(Legended(self.view))
        splitter.addWidget(side)
        splitter.setSizes([720, 380])
        layout = QVBoxLayout(self)
        layout.addWidget(splitter)
        self._load_or_compute()

    def _load_or_compute(self) -> None:
        saved = self.run_dir / "map.json"
        model = self.run_dir / "model.pt"
        if saved.is_file() and model.is_file() and saved.stat().st_mtime >= model.stat().st_mtime:
            try:
                self._show(json.loads(saved.read_text(encoding="utf-8")))
                return
            except (OSError, ValueError, KeyError):
                pass
        run_dir = self.run_dir
        stage = {"name": "reading files", "since": time.perf_counter(), "first": 0}

        def work(progress, control):
            from tlstudio.core.store.runs import RunDir
            from tlstudio.core.training import embedding_map

            def report(name: str, done: int, total: int) -> None:
                if name != stage["name"]:
                    stage.update(name=name, since=time.perf_counter(), first=done)
                progress(done, total)

            run = RunDir.open(run_dir)
            result = embedding_map.build_map(run, control=control, progress=report)
            embedding_map.save(run, result)
            return result

        self.task = Task(work)
        self.task.progress.connect(lambda done, total: self._progress(stage, done, total))
        self.task.finished.connect(self._show)
        self.task.failed.connect(lambda message, hint: self._failed(message, hint))
        self.task.done.connect(lambda: self.cancel.setVisible(False))
        self.task.start()

    def _progress(self, stage: dict, done: int, total: int) -> None:
        """Reading the files: counts and an ETA; the t-SNE, which says nothing until it ends: a moving bar."""
        if stage["name"].startswith("drawing"):
            self.bar.setRange(0, 0)
            self.status.setText("Drawing the map (t-SNE): this step gives no progress; about a minute for a few "
                                "thousand files on a laptop.")
            return
        self.bar.setRange(0, max(total, 1))
        self.bar.setValue(done)
        elapsed, counted = time.perf_counter() - stage["since"], done - stage["first"]
        left = f" · ETA {clock(at_rate(elapsed, counted, total - done))}" if counted > 0 and elapsed > 1 else ""
        self.status.setText(f"Reading the files: {done} / {total}{left}")

    def _cancel(self) -> None:
        if self.task is not None:
            self.task.cancel()
        self.cancel.setEnabled(False)
        self.status.setText("Stopping… (the files read so far are kept for the next time)")

    def _failed(self, message: str, hint: str) -> None:
        self.bar.setVisible(False)
        self.status.setText("Stopped: no map." if message == "Cancelled." else f"No map: {message} {hint}")

    def _show(self, result: dict) -> None:
        self.result = result
        self.bar.setVisible(False)
        self.cancel.setVisible(False)
        points = result["points"]
        regression = result.get("task") == "regression"
        self.view.set_points(points, result["classes"], regression)
        suspects = [p for p in points if p["suspect"]]
        self.status.setText(f"<b>{len(points)} files</b>: {sum(p['mistake'] for p in points)} mistakes (crosses), "
                            f"{sum(p['outlier'] for p in points)} outliers (grey rings), {len(suspects)} look "
                            "mislabelled (red rings). Close dots look alike to the network.")
        self._suspect_rows = suspects
        self.suspects.clear()
        self.suspects.addItems([f"labelled {p['true']}, looks like {p['neighbours_say']}: {Path(p['path']).name}"
                                for p in suspects])
        self.new_label.clear()
        self.new_label.addItems([] if regression else result["classes"])
        self.ready.emit(len(points))

    def _suspect_chosen(self, row: int) -> None:
        rows = getattr(self, "_suspect_rows", [])
        if 0 <= row < len(rows):
            self.view.mark(rows[row]["path"])
            self.choose(rows[row]["path"])

    def choose(self, path: str) -> None:
        """One file: its picture, what it is and what the model says, and what can be done about it."""
        point = next((p for p in (self.result or {}).get("points", []) if p["path"] == path), None)
        if point is None:
            return
        self.current = path
        pixmap = QPixmap(path)
        if pixmap.isNull():
            self.picture.setText("♪ " + Path(path).name)
        else:
            self.picture.setPixmap(pixmap.scaled(220, 200, Qt.AspectRatioMode.KeepAspectRatio,
                                                 Qt.TransformationMode.SmoothTransformation))
        marks = [name for key, name in (("mistake", "a mistake"), ("outlier", "an outlier"),
                                        ("suspect", "looks mislabelled")) if point[key]]
        label = self.state.relabelled().get(path)
        self.details.setText(f"<b>{Path(path).name}</b> ({point['split']})<br>labelled <b>{point['true']}</b>"
                             + (f", relabelled <b>{label}</b> by you" if label else "")
                             + f" · the model says <b>{point['predicted']}</b>"
                             + (f" · {', '.join(marks)}" if marks else ""))
        regression = (self.result or {}).get("task") == "regression"
        self.relabel.setEnabled(not regression)
        self.new_label.setEnabled(not regression)
        if not regression:
            self.new_label.setCurrentText(point["neighbours_say"] or point["predicted"])
        self.leave_out.setEnabled(True)
        self.leave_out.setText("Use in training again" if path in self.state.excluded() else "Leave out of training")

    def _toggle_left_out(self) -> None:
        if self.current:
            self.state.set_excluded(self.current, self.current not in self.state.excluded())
            self.choose(self.current)

    def _relabel(self) -> None:
        if self.current:
            chosen = self.new_label.currentText()
            spec = self.state.spec  # the class its folder gives it: choosing that undoes a relabel
            folder = next((spec.classes[s.label] for s in spec.train + spec.val + spec.test if s.path == self.current),
                          None) if spec is not None else None
            self.state.set_label(self.current, None if chosen == folder else chosen)
            self.choose(self.current)

    def _retrain(self) -> None:
        self.retrain_requested.emit()
        self.accept()

    def done(self, result: int) -> None:  # closing the window stops a map still being drawn
        if self.task is not None:
            self.task.drop()
        super().done(result)
