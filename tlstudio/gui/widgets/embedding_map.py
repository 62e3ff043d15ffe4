"""The map of a run's files (core/training/embedding_map.py) drawn: one colour per class, mistakes as
crosses, outliers ringed grey, files that look mislabelled ringed red. Clicking a dot names its file."""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Signal

from tlstudio.gui.plots import refresh_legend, theme_plot

COLOURS = [(31, 119, 180), (255, 127, 14), (44, 160, 44), (214, 39, 40), (148, 103, 189), (140, 86, 75),
           (227, 119, 194), (127, 127, 127), (188, 189, 34), (23, 190, 207)]


def colour(index: int) -> tuple[int, int, int]:
    base = COLOURS[index % len(COLOURS)]
    if index < len(COLOURS):
        return base
    return tuple(int(c * 0.6) for c in base)  # a darker round for classes 11 and up


class EmbeddingMapView(pg.PlotWidget):
    point_chosen = Signal(str)

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self.setMenuEnabled(False)
        self.hideAxis("left")
        self.hideAxis("bottom")
        self.setTitle("Files by what the network sees in them (t-SNE of the embeddings)")
        self.points: list[dict] = []
        self.items: list[pg.ScatterPlotItem] = []
        self.marked = pg.ScatterPlotItem(size=24, pen=pg.mkPen((255, 140, 0), width=3), brush=pg.mkBrush(None))
        self.marked.setVisible(False)
        self.addItem(self.marked)

    def set_points(self, points: list[dict], classes: list[str], regression: bool = False) -> None:
        for item in self.items:
            self.removeItem(item)
        self.items = []
        self.points = list(points)
        self.removeItem(self.marked)  # re-added last, so the chosen file's ring is drawn on top
        self.marked.setVisible(False)
        if not points:
            refresh_legend(self)
            return
        xy = np.array([[p["x"], p["y"]] for p in points], dtype=np.float64)
        index = np.arange(len(points))
        groups: list[tuple[str, np.ndarray, tuple]] = []
        if regression:
            values = np.array([float(p["true"]) for p in points])
            span = float(values.max() - values.min()) or 1.0
            brushes = [pg.mkBrush(int(30 + 200 * t), 90, int(220 - 200 * t), 170)
                       for t in (values - values.min()) / span]
            item = pg.ScatterPlotItem(x=xy[:, 0], y=xy[:, 1], data=list(index), size=7, pen=pg.mkPen(None),
                                      brush=brushes, name="files (blue low, red high)")
            self._add(item)
        else:
            for number, name in enumerate(classes):
                chosen = [i for i, p in enumerate(points) if p["true"] == name]
                if chosen:
                    groups.append((name, np.array(chosen), colour(number)))
            for name, chosen, rgb in groups:
                item = pg.ScatterPlotItem(x=xy[chosen, 0], y=xy[chosen, 1], data=list(chosen), size=7,
                                          pen=pg.mkPen(None), brush=pg.mkBrush(*rgb, 170), name=name)
                self._add(item)
        for key, symbol, pen, size, name in (("mistake", "x", (20, 20, 20), 9, "mistake"),
                                             ("outlier", "o", (150, 150, 150), 13, "outlier"),
                                             ("suspect", "o", (220, 30, 30), 15, "looks mislabelled")):
            chosen = [i for i, p in enumerate(points) if p[key]]
            if not chosen:
                continue
            brush = pg.mkBrush(20, 20, 20) if symbol == "x" else pg.mkBrush(None)
            item = pg.ScatterPlotItem(x=xy[chosen, 0], y=xy[chosen, 1], data=chosen, size=size, symbol=symbol,
                                      pen=pg.mkPen(pen, width=2 if key == "suspect" else 1), brush=brush,
                                      name=name)
            self._add(item)
        self.addItem(self.marked)
        self.autoRange()
        refresh_legend(self)

    def _add(self, item: pg.ScatterPlotItem) -> None:
        item.sigClicked.connect(self._clicked)
        self.addItem(item)
        self.items.append(item)

    def mark(self, path: str) -> None:
        chosen = [p for p in self.points if p["path"] == path]
        self.marked.setVisible(bool(chosen))
        if chosen:
            self.marked.setData(x=[chosen[0]["x"]], y=[chosen[0]["y"]])

    def apply_theme(self, dark: bool) -> None:
        theme_plot(self, dark)

    def _clicked(self, _item, spots, *_args) -> None:
        if len(spots):
            index = spots[0].data()
            if index is not None and 0 <= int(index) < len(self.points):
                path = self.points[int(index)]["path"]
                self.mark(path)
                self.point_chosen.emit(path)
