"""Predicted against true values of a regression run: one dot per file, the diagonal is a perfect answer.

Clicking a dot names its file (`point_chosen`), so the largest misses can be opened and looked at.
"""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Signal

from tlstudio.gui.plots import theme_plot


class ValueScatter(pg.PlotWidget):
    point_chosen = Signal(str)

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self.setMenuEnabled(False)
        self.showGrid(x=True, y=True, alpha=0.25)
        self.setLabel("bottom", "true value")
        self.setLabel("left", "predicted")
        self.setTitle("Predicted against true (validation files)")
        for name in ("left", "bottom"):
            self.getAxis(name).enableAutoSIPrefix(False)
        self.diagonal = self.plot([], [], pen=pg.mkPen((150, 150, 150), width=1, style=pg.QtCore.Qt.PenStyle.DashLine))
        self.dots = pg.ScatterPlotItem(size=7, pen=pg.mkPen(None), brush=pg.mkBrush(30, 90, 200, 140),
                                       hoverable=True, hoverBrush=pg.mkBrush(230, 120, 20))
        self.addItem(self.dots)
        self.marked = pg.ScatterPlotItem(size=14, pen=pg.mkPen((230, 120, 20), width=2), brush=pg.mkBrush(None))
        self.addItem(self.marked)
        self.marked.setVisible(False)  # empty items would trouble the auto-range with all-NaN bounds
        self.dots.setVisible(False)
        self.dots.sigClicked.connect(self._clicked)
        self.paths: list[str] = []

    def set_points(self, true: list[float], predicted: list[float], paths: list[str], name: str = "value") -> None:
        self.paths = list(paths)
        x = np.asarray(true, dtype=np.float64)
        y = np.asarray(predicted, dtype=np.float64)
        self.setLabel("bottom", f"true {name}")
        self.setLabel("left", f"predicted {name}")
        self.marked.clear()
        self.marked.setVisible(False)
        self.dots.setVisible(bool(len(x)))
        if not len(x):
            self.dots.clear()
            self.diagonal.setData([], [])
            return
        self.dots.setData(x=x, y=y, data=list(range(len(x))))
        self._xy = (x, y)
        if len(x):
            low, high = float(min(x.min(), y.min())), float(max(x.max(), y.max()))
            pad = (high - low) * 0.05 or 1.0
            self.diagonal.setData([low - pad, high + pad], [low - pad, high + pad])
            self.setRange(xRange=(low - pad, high + pad), yRange=(low - pad, high + pad), padding=0)
        else:
            self.diagonal.setData([], [])

    def mark(self, path: str) -> None:
        """Ring the dot of `path` (the file shown beside the plot)."""
        self.marked.clear()
        self.marked.setVisible(path in self.paths)
        if path in self.paths:
            i = self.paths.index(path)
            self.marked.setData(x=[self._xy[0][i]], y=[self._xy[1][i]])

    def apply_theme(self, dark: bool) -> None:
        theme_plot(self, dark)

    def _clicked(self, _item, points, *_args) -> None:
        if len(points):
            index = points[0].data()
            if index is not None and 0 <= index < len(self.paths):
                self.point_chosen.emit(self.paths[index])
