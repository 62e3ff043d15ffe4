"""The learning-rate range test's answer: loss against learning rate (log scale), the suggestion marked."""

from __future__ import annotations

import math

import pyqtgraph as pg
from PySide6.QtCore import Signal
from PySide6.QtWidgets import QDialog, QHBoxLayout, QLabel, QPushButton, QVBoxLayout, QWidget


class LearningRateDialog(QDialog):
    chosen = Signal(float)

    def __init__(self, test, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Learning-rate finder")
        self.resize(620, 420)
        self.test = test
        self.plot = pg.PlotWidget(title="Loss while the learning rate grows")
        self.plot.setBackground("w")
        self.plot.setLogMode(x=True, y=False)
        self.plot.setLabel("bottom", "learning rate")
        self.plot.setLabel("left", "training loss (smoothed)")
        self.plot.getAxis("left").enableAutoSIPrefix(False)
        self.plot.plot(test.learning_rates, test.losses, pen=pg.mkPen((40, 110, 180), width=2))
        marker = pg.InfiniteLine(pos=math.log10(test.suggestion), angle=90,
                                 pen=pg.mkPen((200, 80, 40), width=2, style=pg.QtCore.Qt.PenStyle.DashLine))
        self.plot.addItem(marker)
        text = (f"Suggested: <b>{test.suggestion:.2g}</b>, where the loss falls fastest (the dashed line). The lowest "
                f"loss came at {test.minimum:.2g}" + (", just before it blew up" if test.stopped_early else "")
                + ". Higher rates learn faster but can overshoot; this is a starting point, not a guarantee.")
        caption = QLabel(text)
        caption.setWordWrap(True)
        self.use = QPushButton(f"Use {test.suggestion:.2g}")
        self.use.setDefault(True)
        self.use.clicked.connect(self._use)
        self.close_button = QPushButton("Close")
        self.close_button.clicked.connect(self.reject)
        buttons = QHBoxLayout()
        buttons.addStretch(1)
        buttons.addWidget(self.close_button)
        buttons.addWidget(self.use)
        layout = QVBoxLayout(self)
        layout.addWidget(self.plot, 1)
        layout.addWidget(caption)
        layout.addLayout(buttons)

    def _use(self) -> None:
        self.chosen.emit(self.test.suggestion)
        self.accept()
