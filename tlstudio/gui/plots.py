"""Live training curves with pyqtgraph. Events only append to buffers; a timer redraws when dirty.

At most ~20 redraws a second however fast batches arrive; arrays are float64 copies owned by the GUI
thread; clip-to-view and auto-downsampling keep long runs cheap.
"""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QGridLayout, QWidget

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


def epoch_plot(title: str, y_label: str, legend_at: tuple[int, int] = (-10, 10)) -> pg.PlotWidget:
    """A plot over epochs: whole-number ticks, one unit per quantity (no automatic x0.001 prefixes)."""
    return _plot(title, y_label, "epoch", legend_at, axis=IntegerAxis("bottom"))


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
    legend = plot.plotItem.legend
    if legend is not None:
        legend.setLabelTextColor(text)
        for _sample, label in legend.items:
            label.setText(label.text, color=text)


def _plot(title: str, y_label: str, x_label: str, legend_at: tuple[int, int] = (-10, 10),
          axis: pg.AxisItem | None = None) -> pg.PlotWidget:
    plot = pg.PlotWidget(title=title, axisItems={"bottom": axis} if axis is not None else None)
    plot.setLabel("left", y_label)
    plot.setLabel("bottom", x_label)
    for name in ("left", "bottom"):
        plot.getAxis(name).enableAutoSIPrefix(False)
    plot.showGrid(x=True, y=True, alpha=0.25)
    plot.setClipToView(True)
    plot.setDownsampling(auto=True, mode="peak")
    plot.addLegend(offset=legend_at, colCount=2)  # negative: from the right / bottom edge; two columns: flat
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
        self.acc_plot = epoch_plot("Accuracy per epoch", "accuracy", legend_at=(-10, -10))
        self.lr_plot = _plot("Learning rate", "learning rate", "batch")
        self.lr_plot.getAxis("left").setStyle(tickTextWidth=48, autoExpandTextSpace=True)
        for i, plot in enumerate((self.batch_plot, self.loss_plot, self.acc_plot, self.lr_plot)):
            layout.addWidget(plot, i // 2, i % 2)
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

    def set_legends_visible(self, visible: bool) -> None:
        for plot in (self.batch_plot, self.loss_plot, self.acc_plot, self.lr_plot):
            if plot.plotItem.legend is not None:
                plot.plotItem.legend.setVisible(visible)

    def clear_old_runs(self) -> None:
        for loss, acc in self._old:
            self.loss_plot.removeItem(loss)
            self.acc_plot.removeItem(acc)
            for plot in (self.loss_plot, self.acc_plot):
                legend = plot.plotItem.legend
                if legend is not None:
                    legend.removeItem(loss if plot is self.loss_plot else acc)
        self._old = []

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

    def old_runs(self) -> int:
        return len(self._old)

    def redraw(self) -> None:
        if not self._dirty:
            return
        self._dirty = False
        self.redraws += 1
        x = np.asarray(self.batch_x, dtype=np.float64)
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
        elif shown and not wanted:
            self.acc_plot.removeItem(self.old_val)
            legend = self.acc_plot.plotItem.legend
            if legend is not None:
                legend.removeItem(self.old_val)
        if wanted:
            self.old_val.setData(ex, np.asarray([e.get("old_val", np.nan) for e in self.epochs], dtype=np.float64))

    def points(self) -> dict[str, int]:
        return {"batches": len(self.batch_x), "epochs": len(self.epochs)}
