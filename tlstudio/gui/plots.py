"""Live training curves with pyqtgraph. Events only append to buffers; a timer redraws when dirty.

At most ~20 redraws a second however fast batches arrive; arrays are float64 copies owned by the GUI
thread; clip-to-view and auto-downsampling keep long runs cheap.

Legends are a line of text above each plot (`Legended`), not pyqtgraph's LegendItem: that one is drawn inside
the view box, over the curves wherever it is anchored, and its labels' layout passes cost a third of a second
of the window's start (measured with cProfile: 0.33 s in LabelItem.resizeEvent for seven entries).
"""

from __future__ import annotations

import html

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QGridLayout, QLabel, QVBoxLayout, QWidget

REDRAW_MS = 50
OLD_RUN_PENS = [(150, 150, 150), (120, 170, 200), (200, 160, 110)]


class IntegerAxis(pg.AxisItem):
    """An axis of whole numbers (epochs): no tick at 1.5."""

    def tickValues(self, minVal, maxVal, size):
        levels = [(spacing, [v for v in values if abs(v - round(v)) < 1e-6])
                  for spacing, values in super().tickValues(minVal, maxVal, size) if spacing >= 1]
        if not any(values for _spacing, values in levels):
            first, last = int(np.ceil(minVal)), int(np.floor(maxVal))
            levels = [(1.0, [float(v) for v in range(first, last + 1)])]
        return levels


def epoch_plot(title: str, y_label: str) -> pg.PlotWidget:
    """A plot over epochs: whole-number ticks, one unit per quantity (no automatic x0.001 prefixes)."""
    return _plot(title, y_label, "epoch", axis=IntegerAxis("bottom"))


def _swatch(item) -> str:
    """A named item's colour and mark as text: a solid or dashed rule for a curve, the symbol for points."""
    opts = getattr(item, "opts", {})
    if isinstance(item, pg.ScatterPlotItem):
        brush, pen = pg.mkBrush(opts.get("brush")), pg.mkPen(opts.get("pen"))
        filled = brush.style() != pg.QtCore.Qt.BrushStyle.NoBrush
        mark = {"x": "✕", "t": "▼", "s": "■"}.get(str(opts.get("symbol")), "●" if filled else "○")
        colour = (brush if filled else pen).color().name()
        return f'<span style="color:{colour}">{mark}</span>'
    pen = pg.mkPen(opts.get("pen"))
    mark = "━━" if pen.style() == pg.QtCore.Qt.PenStyle.SolidLine else "┅┅"
    return f'<span style="color:{pen.color().name()}">{mark}</span>'


class Legended(QWidget):
    """A plot with its legend as a line of text above it: never over a curve, wraps when runs are many, and
    readable in either theme (the label takes the window's text colour)."""

    def __init__(self, plot: pg.PlotWidget, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.plot = plot
        self.legend = QLabel("")
        self.legend.setWordWrap(True)
        self.legend.setTextFormat(pg.QtCore.Qt.TextFormat.RichText)
        self.legend.setAccessibleName(f"Legend of {plot.plotItem.titleLabel.text or 'the plot'}")
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(0)
        layout.addWidget(self.legend)
        layout.addWidget(plot, 1)
        plot.legend_line = self
        self.refresh()

    def hasHeightForWidth(self) -> bool:
        """The wrapped legend must not make the plot's height depend on its width: Qt then sizes a page holding
        plots by their preferred heights (the Train page asked for 1,181 px at its least and scrolled)."""
        return False

    def _named(self) -> list:
        return [item for item in self.plot.plotItem.items
                if hasattr(item, "name") and item.name() and item.scene() is not None]

    def entries(self) -> list[str]:
        return [str(item.name()) for item in self._named()]

    def refresh(self) -> None:
        """Rebuilt from the plot's named items (cheap: called after curves are added or removed)."""
        parts = [f"{_swatch(item)}&nbsp;{html.escape(str(item.name()))}" for item in self._named()]
        text = "&nbsp;&nbsp;&nbsp; ".join(parts)
        if text != self.legend.text():
            self.legend.setText(text)
        self.legend.setVisible(bool(parts))


def refresh_legend(plot: pg.PlotWidget) -> None:
    line = getattr(plot, "legend_line", None)
    if line is not None:
        line.refresh()


def set_epoch_range(plot: pg.PlotWidget, epochs: int) -> None:
    """A fixed x range from the planned epochs, so one point does not give absurd axes."""
    plot.setXRange(0.5, max(1, epochs) + 0.5, padding=0)


def theme_plot(plot: pg.PlotWidget, dark: bool) -> None:
    """Background, axes, title and legend colours of an existing plot, for light or dark mode."""
    text = (220, 220, 220) if dark else (40, 40, 40)
    plot.setBackground((28, 30, 33) if dark else "w")
    for axis in ("left", "bottom"):
        plot.getAxis(axis).setPen((200, 200, 200) if dark else (60, 60, 60))
        plot.getAxis(axis).setTextPen((200, 200, 200) if dark else (60, 60, 60))
    plot.setTitle(plot.plotItem.titleLabel.text, color=text)


def _plot(title: str, y_label: str, x_label: str, axis: pg.AxisItem | None = None) -> pg.PlotWidget:
    plot = pg.PlotWidget(title=title, axisItems={"bottom": axis} if axis is not None else None)
    plot.setLabel("left", y_label)
    plot.setLabel("bottom", x_label)
    for name in ("left", "bottom"):
        plot.getAxis(name).enableAutoSIPrefix(False)
    plot.showGrid(x=True, y=True, alpha=0.25)
    plot.setClipToView(True)
    plot.setDownsampling(auto=True, mode="peak")
    plot.setMenuEnabled(False)
    return plot


class TrainingPlots(QWidget):
    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        pg.setConfigOptions(antialias=True)
        layout = QGridLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        self.batch_plot = _plot("Loss per batch", "loss", "batch")
        self.loss_plot = epoch_plot("Loss per epoch", "loss")
        self.acc_plot = epoch_plot("Accuracy per epoch", "accuracy")
        self.lr_plot = _plot("Learning rate", "learning rate", "batch")
        self.lr_plot.getAxis("left").setStyle(tickTextWidth=48, autoExpandTextSpace=True)
        for i, plot in enumerate((self.batch_plot, self.loss_plot, self.acc_plot, self.lr_plot)):
            layout.addWidget(Legended(plot), i // 2, i % 2)
        self.acc_plot.setYRange(0, 1.0, padding=0.02)
        self.raw = self.batch_plot.plot(name="raw", pen=pg.mkPen((120, 160, 220, 110), width=1))
        self.smooth = self.batch_plot.plot(name="smoothed", pen=pg.mkPen((30, 90, 200), width=2))
        self.train_loss = self.loss_plot.plot(name="train", pen=pg.mkPen((30, 90, 200), width=2), symbol="o",
                                              symbolSize=5)
        self.val_loss = self.loss_plot.plot(name="validation", pen=pg.mkPen((230, 120, 20), width=2), symbol="o",
                                            symbolSize=5)
        self.train_acc = self.acc_plot.plot(name="train", pen=pg.mkPen((30, 90, 200), width=2), symbol="o",
                                            symbolSize=5)
        self.val_acc = self.acc_plot.plot(name="validation", pen=pg.mkPen((230, 120, 20), width=2), symbol="o",
                                          symbolSize=5)
        # a continued run's forgetting meter: drawn (and in the legend) only when a run has it
        self.old_val = pg.PlotDataItem(name="old validation", pen=pg.mkPen((40, 160, 90), width=2), symbol="t",
                                       symbolSize=6)
        self.lr = self.lr_plot.plot(name="head lr", pen=pg.mkPen((120, 60, 170), width=2))
        self._old: list = []
        self.planned_epochs = 1
        self.score = "acc"
        self.reset()
        for plot in (self.batch_plot, self.loss_plot, self.acc_plot, self.lr_plot):
            refresh_legend(plot)
        # a run read back from disk has its epochs, not its batches: its per-batch plots say so instead of
        # showing empty axes
        self.blank_notes = []
        for plot in (self.batch_plot, self.lr_plot):
            note = pg.TextItem("Drawn live while a run trains", color=(130, 130, 130), anchor=(0.5, 0.5))
            note.setPos(0.5, 0.5)
            plot.addItem(note, ignoreBounds=True)
            self.blank_notes.append(note)
        self.timer = QTimer(self)
        self.timer.setInterval(REDRAW_MS)
        self.timer.timeout.connect(self.redraw)
        self.timer.start()
        self.redraws = 0

    def reset(self) -> None:
        self.batch_x: list[float] = []
        self.batch_y: list[float] = []
        self.lr_y: list[float] = []
        self.epochs: list[dict[str, float]] = []
        self._ema: float | None = None
        self.smooth_y: list[float] = []
        self._dirty = True

    def add_batches(self, batches: list, steps_per_epoch: int | None = None) -> None:
        for batch in batches:
            x = (batch.epoch - 1) * batch.steps_per_epoch + batch.step
            self.batch_x.append(float(x))
            self.batch_y.append(batch.loss)
            self.lr_y.append(batch.lr)
            # debiased exponential average (as fastai does): no lag towards the first batches' loss
            self._ema = 0.0 if self._ema is None else self._ema
            self._ema = 0.9 * self._ema + 0.1 * batch.loss
            self.smooth_y.append(self._ema / (1 - 0.9 ** (len(self.smooth_y) + 1)))
        self._dirty = True

    def add_epoch(self, epoch: dict[str, float]) -> None:
        self.epochs.append(epoch)
        self._dirty = True

    def apply_theme(self, dark: bool) -> None:
        for plot in (self.batch_plot, self.loss_plot, self.acc_plot, self.lr_plot):
            theme_plot(plot, dark)

    def set_planned_epochs(self, epochs: int) -> None:
        self.planned_epochs = max(1, int(epochs))
        for plot in (self.loss_plot, self.acc_plot):
            set_epoch_range(plot, self.planned_epochs)

    def show_history(self, history: list[dict], epochs: int | None = None) -> None:
        """A finished (or stopped) run's epoch curves, read from its history."""
        self.reset()
        regression = bool(history) and "val_mae" in history[0]
        self.set_score("mae" if regression else "acc")
        for row in history:
            row = {key.replace("_mae", "_acc"): value for key, value in row.items()}
            row["old_val"] = row.get("old_val_acc")
            self.add_epoch({key: float(row[key]) for key in ("epoch", "train_loss", "val_loss", "train_acc",
                                                              "val_acc", "old_val") if row.get(key) is not None})
        self.set_planned_epochs(epochs or len(history) or 1)
        self.redraw()

    def set_score(self, name: str) -> None:
        """"acc" (accuracy, 0 to 1) or "mae" (a regression's error, in the target's unit; lower is better)."""
        if name == self.score:
            return
        self.score = name
        regression = name == "mae"
        self.acc_plot.setTitle("Mean absolute error per epoch (lower is better)" if regression else
                               "Accuracy per epoch")
        self.acc_plot.setLabel("left", "MAE" if regression else "accuracy")
        if regression:
            self.acc_plot.enableAutoRange(axis="y")
        else:
            self.acc_plot.setYRange(0, 1.0, padding=0.02)

    def clear_old_runs(self) -> None:
        for loss, acc in self._old:
            self.loss_plot.removeItem(loss)
            self.acc_plot.removeItem(acc)
        self._old = []
        refresh_legend(self.loss_plot)
        refresh_legend(self.acc_plot)

    def old_run_labels(self) -> list[str]:
        return [loss.name() or "" for loss, _acc in self._old]

    def add_old_run(self, label: str, history: list[dict]) -> None:
        """Earlier runs' validation curves, dashed, beside the current one."""
        if not history:
            return
        color = OLD_RUN_PENS[len(self._old) % len(OLD_RUN_PENS)]
        pen = pg.mkPen(color, width=1.5, style=pg.QtCore.Qt.PenStyle.DashLine)
        x = np.array([row["epoch"] for row in history], dtype=np.float64)
        loss = self.loss_plot.plot(x, np.array([row["val_loss"] for row in history], dtype=np.float64), pen=pen,
                                   name=f"{label} (val)")
        score = np.array([row.get("val_acc", row.get("val_mae")) for row in history], dtype=np.float64)
        acc = self.acc_plot.plot(x, score, pen=pen, name=f"{label} (val)")
        self._old.append((loss, acc))
        refresh_legend(self.loss_plot)
        refresh_legend(self.acc_plot)

    def old_runs(self) -> int:
        return len(self._old)

    def redraw(self) -> None:
        if not self._dirty:
            return
        self._dirty = False
        self.redraws += 1
        x = np.asarray(self.batch_x, dtype=np.float64)
        for note in self.blank_notes:
            note.setVisible(not self.batch_x)
        self.raw.setData(x, np.asarray(self.batch_y, dtype=np.float64))
        self.smooth.setData(x, np.asarray(self.smooth_y, dtype=np.float64))
        self.lr.setData(x, np.asarray(self.lr_y, dtype=np.float64))
        ex = np.asarray([e["epoch"] for e in self.epochs], dtype=np.float64)
        for curve, key in ((self.train_loss, "train_loss"), (self.val_loss, "val_loss"),
                           (self.train_acc, "train_acc"), (self.val_acc, "val_acc")):
            curve.setData(ex, np.asarray([e.get(key, np.nan) for e in self.epochs], dtype=np.float64))
        self._draw_old_val(ex)
        if len(self.epochs) > self.planned_epochs:
            self.set_planned_epochs(len(self.epochs))
        losses = [e[k] for e in self.epochs for k in ("train_loss", "val_loss") if np.isfinite(e.get(k, np.nan))]
        if len(self.epochs) == 1 and losses:  # one point: a range from 0, not a sliver around the value
            self.loss_plot.setYRange(0, max(losses) * 1.25 or 1.0, padding=0)
        elif losses:
            self.loss_plot.enableAutoRange(axis="y")

    def set_old_reference(self, value: float | None) -> None:
        """A continued run: the old run's own score on its validation files, as a dotted line to hold."""
        line = getattr(self, "_reference", None)
        if line is not None:
            self.acc_plot.removeItem(line)
            self._reference = None
        if value is None:
            return
        pen = pg.mkPen((40, 160, 90), width=1, style=pg.QtCore.Qt.PenStyle.DotLine)
        self._reference = pg.InfiniteLine(pos=float(value), angle=0, pen=pen, label=f"old run: {value:.2f}",
                                          labelOpts={"position": 0.1, "color": (40, 160, 90)})
        self.acc_plot.addItem(self._reference)

    def _draw_old_val(self, ex: np.ndarray) -> None:
        shown = self.old_val.scene() is not None
        wanted = any("old_val" in e for e in self.epochs)
        if wanted and not shown:
            self.acc_plot.addItem(self.old_val)
            refresh_legend(self.acc_plot)
        elif shown and not wanted:
            self.acc_plot.removeItem(self.old_val)
            refresh_legend(self.acc_plot)
        if wanted:
            self.old_val.setData(ex, np.asarray([e.get("old_val", np.nan) for e in self.epochs], dtype=np.float64))

    def points(self) -> dict[str, int]:
        return {"batches": len(self.batch_x), "epochs": len(self.epochs)}
