"""The reliability diagram: for files the model was p% sure of, how often it was right (calibration)."""

from __future__ import annotations

import pyqtgraph as pg
from PySide6.QtWidgets import QVBoxLayout, QWidget

from tlstudio.gui.widgets.wrapped_label import WrappedLabel


def calibration_text(calibration: dict | None) -> str:
    """A sentence under the diagram: the calibration error and whether a temperature was applied."""
    if not calibration:
        return "No calibration in this run (trained by an earlier version)."
    if calibration["applied"]:
        return (f"Confidence calibrated: calibration error {calibration['ece_before']:.1%} → "
                f"{calibration['ece_after']:.1%} on {calibration['files']} validation files (each half scored with "
                f"the correction fitted on the other half; the correction divides the model's scores by "
                f"{calibration['temperature']:.2f}). The bars show the calibrated confidence: on the diagonal, "
                "'80% sure' is right 80% of the time.")
    return (f"Confidence left as trained: calibration error {calibration['ece_before']:.1%}; a temperature did "
            f"not lower it on held-out validation files.")


class ReliabilityDiagram(QWidget):
    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.plot = pg.PlotWidget(title="Confidence vs accuracy")
        self.plot.setBackground("w")
        self.plot.setLabel("left", "accuracy")
        self.plot.setLabel("bottom", "stated confidence")
        self.plot.setXRange(0, 1, padding=0.02)
        self.plot.setYRange(0, 1, padding=0.02)
        self.plot.setMouseEnabled(x=False, y=False)
        self.plot.hideButtons()
        self.plot.setMinimumHeight(150)
        self.caption = WrappedLabel("")  # its lines are counted in the page's height
        self.caption.setWordWrap(True)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.plot, 1)
        layout.addWidget(self.caption)
        self.bins: list[dict] = []

    def apply_theme(self, dark: bool) -> None:
        from tlstudio.gui.plots import theme_plot

        theme_plot(self.plot, dark)

    def set_calibration(self, calibration: dict | None) -> None:
        self.plot.clear()
        self.caption.setText(calibration_text(calibration))
        self.bins = list((calibration or {}).get("reliability_after", []))
        self.plot.plot([0, 1], [0, 1], pen=pg.mkPen((150, 150, 150), width=1, style=pg.QtCore.Qt.PenStyle.DashLine))
        if not self.bins:
            return
        centres = [(row["low"] + row["high"]) / 2 for row in self.bins]
        width = self.bins[0]["high"] - self.bins[0]["low"]
        bars = pg.BarGraphItem(x=centres, height=[row["accuracy"] for row in self.bins], width=width * 0.9,
                               brush=(70, 130, 180, 200), pen=(40, 80, 120))
        self.plot.addItem(bars)
        self.plot.plot([row["confidence"] for row in self.bins], [row["accuracy"] for row in self.bins],
                       pen=None, symbol="o", symbolSize=5, symbolBrush=(200, 80, 40))
