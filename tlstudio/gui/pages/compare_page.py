"""Step 6, Compare: every run of the project in a table, curves overlaid, and "Does transfer help?".

"Use this run" (the button, a double-click, or the right-click menu) makes a run the active model for
Evaluate and Try & export; nothing else changes the active model behind the user's back.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QAbstractItemView,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QMenu,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from tlstudio.core.models.registry import pretraining_of
from tlstudio.core.store.project import run_summary
from tlstudio.core.store.runs import RunDir
from tlstudio.gui.plots import Legended, epoch_plot, refresh_legend, theme_plot
from tlstudio.gui.state import StudioState

COLUMNS = ("Run", "Backbone", "Pretrained", "Blocks trained", "Data", "Epochs", "Val accuracy", "Val loss",
           "Seconds")
NUMERIC_FROM = 5
PENS = [(30, 90, 200), (230, 120, 20), (46, 160, 67), (200, 50, 50), (130, 70, 180), (120, 120, 120)]


def describe(row: dict) -> str:
    """A run in words: backbone, how deep, when (the table's and the legends' name for it)."""
    if row.get("pretrained") == "none":
        what = "from scratch"
    elif row.get("depth") in (0, "0"):
        what = "head only"
    else:
        what = f"top {row.get('depth')} blocks"
    stamp = time.strftime("%d %b %H:%M", time.localtime(row["created"])) if row.get("created") else ""
    return f"{row.get('backbone') or '?'}, {what}" + (f", {stamp}" if stamp else "")


def same_data(runs: list[dict]) -> tuple[list[dict], list[dict]]:
    """(the runs on the same data as the newest of them, the others): a contest is only fair on the same folder,
    split the same way into the same validation files (run_summary's data_key)."""
    if not runs:
        return [], []
    newest = max(runs, key=lambda r: r.get("created") or 0)
    key = newest.get("data_key")
    same = [r for r in runs if r.get("data_key") == key]
    return same, [r for r in runs if r.get("data_key") != key]


def points(a: float, b: float) -> str:
    """A difference of two accuracies in percentage points (not 'per cent')."""
    return f"{100 * (a - b):+.1f} percentage points"


class ComparePage(QWidget):
    transfer_check_requested = Signal(str)  # the run to compare with training from scratch
    use_run_requested = Signal(str)  # the run to make the active model

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
        self.table.cellDoubleClicked.connect(lambda row, _col: self._use(row))
        self.table.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        self.table.customContextMenuRequested.connect(self._menu)
        self.table.setToolTip("Double-click a run to make it the model Evaluate and Try & export use.")
        self.use_button = QPushButton("Use this run")
        self.use_button.setObjectName("primary")
        self.use_button.setToolTip("Make the selected run the active model for Evaluate and Try & export.")
        self.use_button.clicked.connect(lambda: self._use(self._current_row()))
        self.active_label = QLabel("")
        self.active_label.setWordWrap(True)
        self.transfer = QPushButton("Does transfer help?  Train the same from scratch")
        self.transfer.setToolTip("Trains the selected run's network and head again from random weights, with the "
                                 "same epochs, batch size and augmentation, and shows both side by side.")
        self.transfer.clicked.connect(self._transfer_check)
        self.verdict = QLabel("")
        self.verdict.setWordWrap(True)
        # whole epochs on the x axis, one unit per quantity (no fractional epochs, no "x0.001" prefixes);
        # legends above the plots, never over a curve
        self.acc_plot = epoch_plot("Validation accuracy", "score")
        self.loss_plot = epoch_plot("Validation loss", "loss")
        plots = QHBoxLayout()
        plots.addWidget(Legended(self.acc_plot))
        plots.addWidget(Legended(self.loss_plot))
        buttons = QHBoxLayout()
        buttons.addWidget(self.use_button)
        buttons.addWidget(self.transfer)
        buttons.addWidget(self.active_label, 1)
        layout = QVBoxLayout(self)
        layout.addWidget(QLabel("<h2>6 · Compare runs</h2>"))
        intro = QLabel("Every run of this project. Select several to overlay their curves; double-click one (or "
                       "press “Use this run”) to make it the active model.")
        intro.setWordWrap(True)
        layout.addWidget(intro)
        layout.addWidget(self.table, 2)
        layout.addLayout(buttons)
        layout.addWidget(self.verdict)
        layout.addLayout(plots, 3)
        state.runs_changed.connect(self.refresh)
        state.run_changed.connect(lambda _run: self._mark_active())

    def apply_theme(self, dark: bool) -> None:
        self.dark = dark
        for plot in (self.acc_plot, self.loss_plot):
            theme_plot(plot, dark)

    def refresh(self) -> None:
        self.rows = [run_summary(path) for path in self.state.project.runs]
        self.table.setRowCount(len(self.rows))
        for i, row in enumerate(self.rows):
            acc, loss, secs = row.get("val_accuracy"), row.get("val_loss"), row.get("seconds")
            interval = row.get("accuracy_interval") or {}
            source = pretraining_of(row.get("backbone"), row.get("pretrained"))
            cells = [describe(row), row.get("backbone") or "?", source,
                     "all" if row.get("pretrained") == "none" else str(row.get("depth")),
                     Path(row["data"]).name if row.get("data") else "?", str(row.get("epochs")),
                     f"{acc:.1%}" if acc is not None else (f"MAE {row['val_mae']:.4g}" if row.get("val_mae")
                                                           is not None else row.get("status", "")),
                     f"{loss:.3f}" if loss is not None else "", f"{secs:.1f}" if secs is not None else ""]
            for col, text in enumerate(cells):
                item = QTableWidgetItem(text)
                tip = row["path"] + (f"\ndata: {row['data']}" if row.get("data") else "")
                if interval and col == 6:
                    tip += f"\n95% interval: {interval['low']:.1%} to {interval['high']:.1%}"
                item.setToolTip(tip)
                if col >= NUMERIC_FROM:
                    item.setTextAlignment(Qt.AlignmentFlag.AlignCenter)
                self.table.setItem(i, col, item)
        self._mark_active()
        self._draw()

    def _current_row(self) -> int:
        rows = sorted({index.row() for index in self.table.selectedIndexes()})
        return rows[-1] if rows else -1

    def _use(self, row: int) -> None:
        if 0 <= row < len(self.rows):
            self.use_run_requested.emit(self.rows[row]["path"])

    def _menu(self, position) -> None:
        row = self.table.rowAt(position.y())
        if row < 0:
            return
        menu = QMenu(self)
        menu.addAction("Use this run", lambda: self._use(row))
        menu.addAction("Does transfer help? Train it from scratch",
                       lambda: self.transfer_check_requested.emit(self.rows[row]["path"]))
        menu.popup(self.table.viewport().mapToGlobal(position))
        self._popup = menu

    def _mark_active(self) -> None:
        active = str(Path(self.state.run_dir).resolve()) if self.state.run_dir is not None else ""
        for i, row in enumerate(self.rows):
            item = self.table.item(i, 0)
            if item is None:
                continue
            font = item.font()
            font.setBold(row["path"] == active)
            item.setFont(font)
            item.setText(("● " if row["path"] == active else "") + describe(row))
        chosen = [r for r in self.rows if r["path"] == active]
        self.active_label.setText(f"Active model: <b>{describe(chosen[0])}</b>" if chosen
                                  else "No active model: double-click a run to use it.")

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
            label = describe(row)
            score = [h.get("val_acc", h.get("val_mae")) for h in history]  # accuracy, or a regression's MAE
            self.acc_plot.plot(x, np.array(score, dtype=np.float64), pen=pen, name=label, symbol="o", symbolSize=5)
            self.loss_plot.plot(x, np.array([h["val_loss"] for h in history], dtype=np.float64), pen=pen,
                                name=label, symbol="o", symbolSize=5)
        for plot in (self.acc_plot, self.loss_plot):
            theme_plot(plot, getattr(self, "dark", False))
            refresh_legend(plot)
        self._verdict(chosen)

    def _verdict(self, chosen: list[dict]) -> None:
        chosen, apart = same_data(chosen)
        note = ""
        if apart:
            folders = sorted({Path(r["data"]).name if r.get("data") else "?" for r in apart})
            note = (f" <i>{len(apart)} run(s) on other data (or split another way) are not ranked with these: "
                    f"{', '.join(folders)}. Scores on different validation files do not compare.</i>")
        self._verdict_same_data(chosen)
        if note:
            self.verdict.setText(self.verdict.text() + note)

    def _verdict_same_data(self, chosen: list[dict]) -> None:
        pretrained = [r for r in chosen if r.get("pretrained") not in (None, "none") and r.get("val_accuracy")]
        scratch = [r for r in chosen if r.get("pretrained") == "none" and r.get("val_accuracy") is not None]
        if pretrained and scratch:
            a, b = max(pretrained, key=lambda r: r["val_accuracy"]), max(scratch, key=lambda r: r["val_accuracy"])
            gain = a["val_accuracy"] - b["val_accuracy"]
            if gain > 0.02:
                text = (f"<b>Transfer learning helps here:</b> {a['val_accuracy']:.1%} with pretrained weights vs "
                        f"{b['val_accuracy']:.1%} from scratch with the same budget "
                        f"({points(a['val_accuracy'], b['val_accuracy'])}).")
            elif gain < -0.02:
                text = (f"<b>Training from scratch did better here</b> ({b['val_accuracy']:.1%} vs "
                        f"{a['val_accuracy']:.1%}): your images may be unlike ImageNet photos, or plentiful.")
            else:
                text = (f"Pretrained and from scratch score about the same ({a['val_accuracy']:.1%} vs "
                        f"{b['val_accuracy']:.1%}); pretrained weights still usually train faster.")
            if (a.get("epochs") or 0) > (b.get("epochs") or 0):
                text += (f" (From scratch had fewer epochs, {b.get('epochs')} against {a.get('epochs')}: a shorter "
                         "budget, so its score is a floor.)")
            self.verdict.setText(text + self._overlap_note(a, b))
        elif len([r for r in chosen if r.get("val_accuracy") is not None]) >= 2:
            self.verdict.setText(self._which_won([r for r in chosen if r.get("val_accuracy") is not None]))
        else:
            self.verdict.setText("To measure what transfer brings, press “Does transfer help?” (it trains the "
                                 "selected pretrained run's network from random weights, for comparison).")

    @staticmethod
    def _overlap_note(a: dict, b: dict) -> str:
        ia, ib = a.get("accuracy_interval"), b.get("accuracy_interval")
        if ia and ib and ia["low"] <= ib["high"] and ib["low"] <= ia["high"]:
            return (" Their 95% intervals overlap, so with this few validation files the difference may be "
                    "chance.")
        return ""

    def _which_won(self, runs: list[dict]) -> str:
        """One sentence: which setting won, by how much, and the likely reason."""
        best = max(runs, key=lambda r: r["val_accuracy"])
        rest = [r for r in runs if r is not best]
        other = max(rest, key=lambda r: r["val_accuracy"])
        differs = [key for key in ("backbone", "depth", "augment", "lr", "head", "epochs")
                   if best.get(key) != other.get(key)]
        why = ""
        if differs == ["depth"]:
            deeper = (best.get("depth") or 0) > (other.get("depth") or 0)
            why = (" Fine-tuning more blocks adapted the network to your pictures." if deeper else
                   " Training fewer blocks avoided over-fitting this small data set.")
        elif "backbone" in differs:
            why = f" The {best.get('backbone')} backbone's features suit this data better."
        elif differs == ["augment"]:
            why = f" {str(best.get('augment')).capitalize()} augmentation generalised better."
        elif differs == ["epochs"]:
            why = " A different training length changed the result."
        setting = ", ".join(differs) if differs else "the same settings (a different seed or data)"
        return (f"<b>{describe(best)}</b> won: {best['val_accuracy']:.1%} vs {other['val_accuracy']:.1%} "
                f"({points(best['val_accuracy'], other['val_accuracy'])}); it differs in {setting}.{why}"
                + self._overlap_note(best, other))

    def _transfer_check(self) -> None:
        chosen = [r for r in self.selected() if r.get("pretrained") != "none"] or [
            r for r in self.rows if r.get("pretrained") != "none"][-1:]
        if chosen:
            self.transfer_check_requested.emit(chosen[-1]["path"])
