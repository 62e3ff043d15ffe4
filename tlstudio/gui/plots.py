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


def _plot(title: str, y_label: str, x_label: str, legend_at: tuple[int, int] = (-10, 10)) -> pg.PlotWidget:
    plot = pg.PlotWidget(title=title)
    plot.setLabel("left", y_label)
    plot.setLabel("bottom", x_label)
    plot.showGrid(x=True, y=True, alpha=0.25)
    plot.setClipToView(True)
    plot.setDownsampling(auto=True, mode="peak")
    plot.addLegend(offset=legend_at)  # negative: from the right / bottom edge
    plot.setMenuEnabled(False)
    return plot


class TrainingPlots(QWidget):
    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        pg.setConfigOptions(antialias=True)
        layout = QGridLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        self.batch_plot = _plot("Loss per batch", "loss", "batch")
        self.loss_plot = _plot("Loss per epoch", "loss", "epoch")
        self.acc_plot = _plot("Accuracy per epoch", "accuracy", "epoch", legend_at=(-10, -10))
        self.lr_plot = _plot("Learning rate", "lr", "batch")
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
        self.lr = self.lr_plot.plot(name="head lr", pen=pg.mkPen((120, 60, 170), width=2))
        self._old: list = []
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

    def add_old_run(self, label: str, history: list[dict]) -> None:
        """Earlier runs' validation curves, dashed, beside the current one."""
        if not history:
            return
        color = OLD_RUN_PENS[len(self._old) % len(OLD_RUN_PENS)]
        pen = pg.mkPen(color, width=1.5, style=pg.QtCore.Qt.PenStyle.DashLine)
        x = np.array([row["epoch"] for row in history], dtype=np.float64)
        loss = self.loss_plot.plot(x, np.array([row["val_loss"] for row in history], dtype=np.float64), pen=pen,
                                   name=f"{label} (val)")
        acc = self.acc_plot.plot(x, np.array([row["val_acc"] for row in history], dtype=np.float64), pen=pen,
                                 name=f"{label} (val)")
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
            curve.setData(ex, np.asarray([e[key] for e in self.epochs], dtype=np.float64))

    def points(self) -> dict[str, int]:
        return {"batches": len(self.batch_x), "epochs": len(self.epochs)}
