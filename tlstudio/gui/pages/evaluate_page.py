"""Step 4, Evaluate: accuracy, per-class metrics, the confusion matrix and the most confident mistakes."""

from __future__ import annotations

import csv
import json
from pathlib import Path

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QHeaderView,
    QLabel,
    QSplitter,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from tlstudio.gui.state import StudioState
from tlstudio.gui.widgets.confusion import ConfusionMatrix
from tlstudio.gui.widgets.thumbnails import ThumbnailGrid


class EvaluatePage(QWidget):
    def __init__(self, state: StudioState, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.state = state
        self.predictions: list[dict[str, str]] = []
        self.headline = QLabel("Train a model to see how good it is.")
        self.headline.setWordWrap(True)
        self.per_class = QTableWidget(0, 5)
        self.per_class.setHorizontalHeaderLabels(["Class", "Precision", "Recall", "F1", "Files"])
        self.per_class.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Stretch)
        self.per_class.verticalHeader().setVisible(False)
        self.per_class.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
        self.per_class.setToolTip("Precision: of the files called this class, how many were right. "
                                  "Recall: of the files of this class, how many were found.")
        self.matrix = ConfusionMatrix()
        self.matrix.cell_chosen.connect(self.show_cell)
        self.cell_title = QLabel("<b>Most confident mistakes</b>")
        self.gallery = ThumbnailGrid(110)
        left = QWidget()
        left_layout = QVBoxLayout(left)
        left_layout.setContentsMargins(0, 0, 0, 0)
        left_layout.addWidget(self.per_class, 2)
        left_layout.addWidget(QLabel("<b>Confusion matrix</b> (click a cell to see its files)"))
        left_layout.addWidget(self.matrix, 3)
        right = QWidget()
        right_layout = QVBoxLayout(right)
        right_layout.setContentsMargins(0, 0, 0, 0)
        right_layout.addWidget(self.cell_title)
        right_layout.addWidget(self.gallery)
        splitter = QSplitter()
        splitter.addWidget(left)
        splitter.addWidget(right)
        splitter.setSizes([520, 460])
        layout = QVBoxLayout(self)
        layout.addWidget(QLabel("<h2>4 · Evaluate</h2>"))
        layout.addWidget(self.headline)
        layout.addWidget(splitter, 1)
        state.run_changed.connect(self.load_run)

    def load_run(self, run_dir: Path | None) -> None:
        if run_dir is None or not (Path(run_dir) / "metrics.json").is_file():
            return
        run_dir = Path(run_dir)
        metrics = json.loads((run_dir / "metrics.json").read_text(encoding="utf-8"))
        classes = metrics["classes"]
        self.headline.setText(
            f"<b>Validation accuracy {metrics['val_accuracy']:.1%}</b> on {metrics['sizes']['val']} files · "
            f"macro F1 {metrics['macro_f1']:.3f} · {metrics['backbone']}, {metrics['unfreeze_blocks']} block(s) "
            f"fine-tuned · best of {metrics['epochs']} epochs at epoch {metrics['best_epoch']} · "
            f"{metrics['train_seconds']:.1f} s on {metrics['device']}")
        self.per_class.setRowCount(len(classes))
        for row, name in enumerate(classes):
            values = metrics["per_class"][name]
            cells = [name, f"{values['precision']:.3f}", f"{values['recall']:.3f}", f"{values['f1']:.3f}",
                     str(values["support"])]
            for col, text in enumerate(cells):
                item = QTableWidgetItem(text)
                if col:
                    item.setTextAlignment(Qt.AlignmentFlag.AlignCenter)
                self.per_class.setItem(row, col, item)
        self.matrix.set_matrix(classes, metrics["confusion_matrix"])
        self.predictions = []
        path = run_dir / "predictions.tsv"
        if path.is_file():
            with open(path, encoding="utf-8", newline="") as handle:
                self.predictions = list(csv.DictReader(handle, delimiter="\t"))
        self.show_mistakes()

    def show_mistakes(self) -> None:
        wrong = [p for p in self.predictions if p["true"] != p["predicted"]]
        wrong.sort(key=lambda p: -float(p["confidence"]))
        self.cell_title.setText(f"<b>Most confident mistakes</b> ({len(wrong)})" if wrong
                                else "<b>No mistakes on the validation files.</b>")
        self._show(wrong[:200])

    def show_cell(self, true: str, predicted: str) -> None:
        rows = [p for p in self.predictions if p["true"] == true and p["predicted"] == predicted]
        self.cell_title.setText(f"<b>{len(rows)} '{true}' file(s) predicted as '{predicted}'</b>")
        self._show(rows)

    def _show(self, rows: list[dict[str, str]]) -> None:
        captions = [f"{p['predicted']} {float(p['confidence']):.0%}" for p in rows]
        self.gallery.thumbs.set_paths([p["path"] for p in rows], captions)

    def shown_paths(self) -> list[str]:
        return list(self.gallery.thumbs.paths)
