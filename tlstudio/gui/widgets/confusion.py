"""A confusion-matrix heatmap; clicking a cell asks to see those samples."""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QBrush, QColor
from PySide6.QtWidgets import QAbstractItemView, QHeaderView, QTableWidget, QTableWidgetItem


class ConfusionMatrix(QTableWidget):
    cell_chosen = Signal(str, str)  # true class, predicted class

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self.classes: list[str] = []
        self.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Stretch)
        self.verticalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Stretch)
        self.setToolTip("Rows: the true class. Columns: what the model predicted. Click a cell to see its files.")
        self.cellClicked.connect(self._clicked)

    def set_matrix(self, classes: list[str], matrix: list[list[int]]) -> None:
        self.classes = classes
        self.clear()
        self.setRowCount(len(classes))
        self.setColumnCount(len(classes))
        self.setHorizontalHeaderLabels([f"predicted\n{c}" for c in classes])
        self.setVerticalHeaderLabels([f"true: {c}" for c in classes])
        for row, counts in enumerate(matrix):
            total = max(sum(counts), 1)
            for col, count in enumerate(counts):
                share = count / total
                item = QTableWidgetItem(f"{count}\n{share:.0%}")
                item.setTextAlignment(Qt.AlignmentFlag.AlignCenter)
                base = QColor(46, 160, 67) if row == col else QColor(218, 54, 51)
                color = QColor(base)
                color.setAlphaF(0.08 + 0.8 * share if count else 0.0)
                item.setBackground(QBrush(color))
                item.setToolTip(f"{count} '{classes[row]}' file(s) predicted as '{classes[col]}'")
                self.setItem(row, col, item)

    def _clicked(self, row: int, col: int) -> None:
        if self.classes:
            self.cell_chosen.emit(self.classes[row], self.classes[col])
