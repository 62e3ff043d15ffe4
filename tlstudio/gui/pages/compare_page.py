"""Step 6, Compare: every run of the project in a table, curves overlaid, and "Does transfer help?"."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QAbstractItemView,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from tlstudio.core.store.project import run_summary
from tlstudio.core.store.runs import RunDir
from tlstudio.gui.plots import theme_plot
from tlstudio.gui.state import StudioState

COLUMNS = ("Run", "Backbone", "Pretrained", "Blocks trained", "Epochs", "Val accuracy", "Val loss", "Seconds")
PENS = [(30, 90, 200), (230, 120, 20), (46, 160, 67), (200, 50, 50), (130, 70, 180), (120, 120, 120)]


class ComparePage(QWidget):
    transfer_check_requested = Signal(str)  # the run to compare with training from scratch

    def __init__(self, state: StudioState, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.state = state
        self.rows: list[dict] = []
        self.table = QTableWidget(0, len(COLUMNS))
        self.table.setHorizontalHeaderLabels(COLUMNS)
        self.table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        self.table.horizontalHeader().setStretchLastSection(True)
        self.table.verticalHeader().setVisible(False)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.itemSelectionChanged.connect(self._draw)
        self.transfer = QPushButton("Does transfer help?  Train the same from scratch")
        self.transfer.setToolTip("Trains the selected run's network and head again from random weights, with the "
                                 "same epochs, batch size and augmentation, and shows both side by side.")
        self.transfer.clicked.connect(self._transfer_check)
        self.verdict = QLabel("")
        self.verdict.setWordWrap(True)
        self.acc_plot = pg.PlotWidget(title="Validation accuracy")
        self.loss_plot = pg.PlotWidget(title="Validation loss")
        for plot in (self.acc_plot, self.loss_plot):
            plot.setLabel("bottom", "epoch")
            plot.showGrid(x=True, y=True, alpha=0.25)
            plot.addLegend(offset=(-10, -10))
            plot.setMenuEnabled(False)
        plots = QHBoxLayout()
        plots.addWidget(self.acc_plot)
        plots.addWidget(self.loss_plot)
        buttons = QHBoxLayout()
        buttons.addWidget(self.transfer)
        buttons.addStretch(1)
        layout = QVBoxLayout(self)
        layout.addWidget(QLabel("<h2>6 · Compare runs</h2>"))
        layout.addWidget(QLabel("Every run of this project. Select several to overlay their curves."))
        layout.addWidget(self.table, 2)
        layout.addLayout(buttons)
        layout.addWidget(self.verdict)
        layout.addLayout(plots, 3)
        state.runs_changed.connect(self.refresh)

    def apply_theme(self, dark: bool) -> None:
        self.dark = dark
        for plot in (self.acc_plot, self.loss_plot):
            theme_plot(plot, dark)

    def refresh(self) -> None:
        self.rows = [run_summary(path) for path in self.state.project.runs]
        self.table.setRowCount(len(self.rows))
        for i, row in enumerate(self.rows):
            acc, loss, secs = row.get("val_accuracy"), row.get("val_loss"), row.get("seconds")
            cells = [row["name"], row.get("backbone") or "?", "ImageNet" if row.get("pretrained") == "imagenet"
                     else ("none (from scratch)" if row.get("pretrained") == "none" else str(row.get("pretrained"))),
                     "all" if row.get("pretrained") == "none" else str(row.get("depth")), str(row.get("epochs")),
                     f"{acc:.1%}" if acc is not None else row.get("status", ""),
                     f"{loss:.3f}" if loss is not None else "", f"{secs:.1f}" if secs is not None else ""]
            for col, text in enumerate(cells):
                item = QTableWidgetItem(text)
                item.setToolTip(row["path"])
                if col >= 4:
                    item.setTextAlignment(Qt.AlignmentFlag.AlignCenter)
                self.table.setItem(i, col, item)
        self._draw()

    def select_paths(self, paths: list[str]) -> None:
        self.table.clearSelection()
        for i, row in enumerate(self.rows):
            if row["path"] in paths:
                for col in range(self.table.columnCount()):
                    self.table.item(i, col).setSelected(True)
        self._draw()

    def selected(self) -> list[dict]:
        return [self.rows[i] for i in sorted({index.row() for index in self.table.selectedIndexes()})]

    def _draw(self) -> None:
        for plot in (self.acc_plot, self.loss_plot):
            plot.clear()
        chosen = self.selected() or self.rows[-2:]
        for n, row in enumerate(chosen):
            if not row.get("exists"):
                continue
            history = RunDir(Path(row["path"])).read_history()
            if not history:
                continue
            x = np.array([h["epoch"] for h in history], dtype=np.float64)
            pen = pg.mkPen(PENS[n % len(PENS)], width=2)
            label = f"{row['name'][-24:]}"
            self.acc_plot.plot(x, np.array([h["val_acc"] for h in history], dtype=np.float64), pen=pen, name=label,
                               symbol="o", symbolSize=5)
            self.loss_plot.plot(x, np.array([h["val_loss"] for h in history], dtype=np.float64), pen=pen,
                                name=label, symbol="o", symbolSize=5)
        for plot in (self.acc_plot, self.loss_plot):
            theme_plot(plot, getattr(self, "dark", False))
        self._verdict(chosen)

    def _verdict(self, chosen: list[dict]) -> None:
        pretrained = [r for r in chosen if r.get("pretrained") not in (None, "none") and r.get("val_accuracy")]
        scratch = [r for r in chosen if r.get("pretrained") == "none" and r.get("val_accuracy") is not None]
        if pretrained and scratch:
            a, b = max(pretrained, key=lambda r: r["val_accuracy"]), max(scratch, key=lambda r: r["val_accuracy"])
            gain = a["val_accuracy"] - b["val_accuracy"]
            if gain > 0.02:
                text = (f"<b>Transfer learning helps here:</b> {a['val_accuracy']:.1%} with pretrained weights vs "
                        f"{b['val_accuracy']:.1%} from scratch with the same budget (+{gain:.1%}).")
            elif gain < -0.02:
                text = (f"<b>Training from scratch did better here</b> ({b['val_accuracy']:.1%} vs "
                        f"{a['val_accuracy']:.1%}): your images may be unlike ImageNet photos, or plentiful.")
            else:
                text = (f"Pretrained and from scratch score about the same ({a['val_accuracy']:.1%} vs "
                        f"{b['val_accuracy']:.1%}); pretrained weights still usually train faster.")
            self.verdict.setText(text)
        else:
            self.verdict.setText("Select a pretrained run and press the button above to measure what transfer brings.")

    def _transfer_check(self) -> None:
        chosen = [r for r in self.selected() if r.get("pretrained") != "none"] or [
            r for r in self.rows if r.get("pretrained") != "none"][-1:]
        if chosen:
            self.transfer_check_requested.emit(chosen[-1]["path"])
