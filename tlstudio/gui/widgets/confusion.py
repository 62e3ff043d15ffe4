"""A confusion-matrix heatmap, readable from 2 to 50 classes; clicking a cell asks to see those samples.

Cells stretch to fill the space while each keeps room for the largest count; past that the table scrolls (and
Ctrl + wheel zooms), so counts are never cut to "17…". Headers hold the class names alone (the axes are named
above the table): column names written upwards, long ones shortened with an ellipsis and whole in their
tooltips. Where a cell is small it shows its count only; the row's share is in its tooltip.
"""

from __future__ import annotations

from PySide6.QtCore import QRect, QSize, Qt, Signal
from PySide6.QtGui import QBrush, QColor, QPainter, QResizeEvent, QWheelEvent
from PySide6.QtWidgets import QAbstractItemView, QHeaderView, QStyle, QStyleOptionHeader, QTableWidget, QTableWidgetItem

ROOMY_CELL = 64  # pixels: space for the row's share under the count
ROW_LABEL_CHARS = 22
COLUMN_LABEL_MAX = 130  # pixels: the tallest the rotated column labels get
UPRIGHT_WIDTH = 110  # pixels: a column this wide shows its name upright (elided when longer)


class RotatedHeader(QHeaderView):
    """Column labels written upwards, so a narrow column still shows its class's name (elided to the header's
    height, whole in the tooltip)."""

    def __init__(self, parent=None) -> None:
        super().__init__(Qt.Orientation.Horizontal, parent)
        self.setSectionsClickable(True)
        self.rotated = False  # upright labels while every column is wide enough for its name

    def longest_label(self) -> int:
        model = self.model()
        if model is None:
            return 0
        metrics = self.fontMetrics()
        return max((metrics.horizontalAdvance(str(model.headerData(i, Qt.Orientation.Horizontal)))
                    for i in range(self.count())), default=0)

    def sizeHint(self) -> QSize:
        hint = super().sizeHint()
        return QSize(hint.width(), min(COLUMN_LABEL_MAX, self.longest_label() + 12)) if self.rotated else hint

    def paintSection(self, painter: QPainter, rect: QRect, index: int) -> None:
        if not self.rotated:
            super().paintSection(painter, rect, index)
            return
        option = QStyleOptionHeader()
        self.initStyleOption(option)
        option.rect, option.section, option.text = rect, index, ""
        self.style().drawControl(QStyle.ControlElement.CE_Header, option, painter, self)
        text = str(self.model().headerData(index, Qt.Orientation.Horizontal) or "")
        painter.save()
        painter.translate(rect.left() + rect.width() / 2 + self.fontMetrics().ascent() / 2 - 2, rect.bottom() - 6)
        painter.rotate(-90)
        painter.setPen(self.palette().color(self.foregroundRole()))
        painter.drawText(0, 0, self.fontMetrics().elidedText(text, Qt.TextElideMode.ElideMiddle, rect.height() - 10))
        painter.restore()


def shortened(name: str, limit: int) -> str:
    """Elided in the middle: class names often share a beginning and differ at the end ("... name 0")."""
    if len(name) <= limit:
        return name
    tail = (limit - 1) // 2
    return name[: limit - 1 - tail] + "…" + name[len(name) - tail :]


class ConfusionMatrix(QTableWidget):
    cell_chosen = Signal(str, str)  # true class, predicted class

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self.classes: list[str] = []
        self.matrix: list[list[int]] = []
        self.setHorizontalHeader(RotatedHeader(self))
        self.horizontalHeader().setTextElideMode(Qt.TextElideMode.ElideMiddle)
        self.cell_min = self._smallest_cell(0)
        self._roomy: bool | None = None  # whether cells show the share now (texts change only when this does)
        self.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.setHorizontalScrollMode(QAbstractItemView.ScrollMode.ScrollPerPixel)
        self.setVerticalScrollMode(QAbstractItemView.ScrollMode.ScrollPerPixel)
        for header in (self.horizontalHeader(), self.verticalHeader()):
            header.setMinimumSectionSize(12)
        self.setToolTip("Rows: the true class. Columns: what the model predicted. Click a cell to see its files; "
                        "Ctrl + wheel zooms.")
        self.setAccessibleName("Confusion matrix")
        self.cellClicked.connect(self._clicked)

    def set_matrix(self, classes: list[str], matrix: list[list[int]]) -> None:
        self.classes, self.matrix = list(classes), [list(row) for row in matrix]
        self.clear()
        self._roomy = None
        self.setRowCount(len(classes))
        self.setColumnCount(len(classes))
        for col, name in enumerate(classes):
            header = QTableWidgetItem(name)
            header.setToolTip(f"predicted: {name}")
            self.setHorizontalHeaderItem(col, header)
            row_header = QTableWidgetItem(shortened(name, ROW_LABEL_CHARS))
            row_header.setToolTip(f"true: {name}")
            self.setVerticalHeaderItem(col, row_header)
        for row, counts in enumerate(matrix):
            total = max(sum(counts), 1)
            for col, count in enumerate(counts):
                share = count / total
                item = QTableWidgetItem(str(count))
                item.setData(Qt.ItemDataRole.UserRole, share)
                item.setTextAlignment(Qt.AlignmentFlag.AlignCenter)
                base = QColor(46, 160, 67) if row == col else QColor(218, 54, 51)
                color = QColor(base)
                color.setAlphaF(0.08 + 0.8 * share if count else 0.0)
                item.setBackground(QBrush(color))
                item.setToolTip(f"{count} '{classes[row]}' file(s) predicted as '{classes[col]}' ({share:.0%} of "
                                f"the row)")
                self.setItem(row, col, item)
        self.cell_min = self._smallest_cell(max((max(row, default=0) for row in matrix), default=0))
        self.horizontalHeader().rotated = False
        self.horizontalHeader().setFixedHeight(max(0, self.horizontalHeader().sizeHint().height()))  # -1: empty
        self._fit()

    def _smallest_cell(self, largest: int) -> int:
        """Pixels a cell needs for the largest count in the table's font, with a margin."""
        metrics = self.fontMetrics()
        return max(metrics.horizontalAdvance("0" * max(2, len(str(largest)))) + 12, metrics.height() + 8)

    def resizeEvent(self, event: QResizeEvent) -> None:
        super().resizeEvent(event)
        self._fit()

    def wheelEvent(self, event: QWheelEvent) -> None:
        if event.modifiers() & Qt.KeyboardModifier.ControlModifier and self.classes:
            factor = 1.15 if event.angleDelta().y() > 0 else 1 / 1.15
            self.cell_min = int(min(240, max(12, self.cell_min * factor)))
            self._fit()
            event.accept()
            return
        super().wheelEvent(event)

    def _fit(self) -> None:
        """Columns and rows stretch while each keeps room for its count, else they keep that size and the table
        scrolls; column names turn upwards when a column is narrower than its name; the share shows under the
        count only where a cell has room for two lines."""
        n = len(self.classes)
        if not n:
            return
        metrics = self.fontMetrics()
        row_min = max(metrics.height() + 8, int(self.cell_min * 0.7))
        columns, rows = self.horizontalHeader(), self.verticalHeader()
        for header, space, least in ((columns, self.viewport().width(), self.cell_min),
                                     (rows, self.viewport().height(), row_min)):
            fits = space / n >= least
            header.setSectionResizeMode(QHeaderView.ResizeMode.Stretch if fits else QHeaderView.ResizeMode.Fixed)
            if not fits:
                header.setDefaultSectionSize(least)
                for section in range(n):
                    header.resizeSection(section, least)
        width = columns.sectionSize(0)
        rotated = width < min(columns.longest_label() + 10, UPRIGHT_WIDTH)  # wide columns elide their names
        if rotated != columns.rotated:
            columns.rotated = rotated
            columns.setFixedHeight(max(0, columns.sizeHint().height()))
            columns.viewport().update()
        # never squeezed to its column names alone (a user at 960x600 saw headers and no cell): two rows at the
        # least; the page scrolls down instead
        self.setMinimumHeight(max(0, columns.sizeHint().height()) + 2 * row_min + 2 * self.frameWidth()
                              + self.horizontalScrollBar().sizeHint().height())
        roomy = width >= max(ROOMY_CELL, metrics.horizontalAdvance("100%") + 12) and \
            rows.sectionSize(0) >= 2 * metrics.height() + 8
        if roomy == self._roomy:
            return
        self._roomy = roomy
        for row in range(n):
            for col in range(n):
                item = self.item(row, col)
                if item is not None:
                    count = self.matrix[row][col]
                    share = item.data(Qt.ItemDataRole.UserRole) or 0.0
                    item.setText(f"{count}\n{share:.0%}" if roomy else str(count))

    def _clicked(self, row: int, col: int) -> None:
        if self.classes:
            self.cell_chosen.emit(self.classes[row], self.classes[col])
