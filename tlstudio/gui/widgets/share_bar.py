"""A table cell drawn as a bar: a class's share of the files, painted by the style, not a widget per row.

A QProgressBar set into each row cost 7 ms per class to create and polish (70 ms for ten classes on the
GUI thread) and made the table hold one live widget per class; a delegate paints only the rows on screen.
"""

from __future__ import annotations

from PySide6.QtCore import QModelIndex, QPersistentModelIndex, Qt
from PySide6.QtGui import QPainter
from PySide6.QtWidgets import QApplication, QStyle, QStyledItemDelegate, QStyleOptionProgressBar, QStyleOptionViewItem


class ShareBar(QStyledItemDelegate):
    FRACTION = Qt.ItemDataRole.UserRole + 1  # 0..1: the bar's length; the cell's text is drawn on it

    def paint(self, painter: QPainter, option: QStyleOptionViewItem,
              index: QModelIndex | QPersistentModelIndex) -> None:
        fraction = index.data(self.FRACTION)
        if fraction is None:
            super().paint(painter, option, index)
            return
        bar = QStyleOptionProgressBar()
        bar.rect = option.rect.adjusted(2, 3, -2, -3)
        bar.minimum, bar.maximum = 0, 1000
        bar.progress = round(1000 * float(fraction))
        bar.text = str(index.data() or "")
        bar.textVisible = True
        bar.textAlignment = Qt.AlignmentFlag.AlignCenter
        bar.state = option.state | QStyle.StateFlag.State_Horizontal
        widget = option.widget
        style = widget.style() if widget is not None else QApplication.style()
        style.drawControl(QStyle.ControlElement.CE_ProgressBar, bar, painter, widget)
