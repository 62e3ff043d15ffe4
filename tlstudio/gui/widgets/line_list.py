"""A list of text lines for any number of them: a view over a string model, virtualised.

QListWidget makes a QListWidgetItem per line; with 100,000 clips or thousands of unreadable files the
page would build and lay out every one. Here the view asks only for the rows on screen; past
`UNIFORM_FROM` lines every row gets one height (no word-wrap measuring), so scrolling stays O(visible).
"""

from __future__ import annotations

from collections.abc import Sequence

from PySide6.QtCore import QModelIndex, QPoint, QStringListModel, Qt, Signal
from PySide6.QtWidgets import QListView

UNIFORM_FROM = 500  # lines: past this, one row height for all (long lines are cut at the right, their tooltip is whole)


class _Lines(QStringListModel):
    def data(self, index: QModelIndex, role: int = Qt.ItemDataRole.DisplayRole):
        if role == Qt.ItemDataRole.ToolTipRole:
            role = Qt.ItemDataRole.DisplayRole
        return super().data(index, role)


class LineList(QListView):
    current_text_changed = Signal(str)
    current_row_changed = Signal(int)

    def __init__(self, parent=None, wrap: bool = False) -> None:
        super().__init__(parent)
        self.lines = _Lines(self)
        self.setModel(self.lines)
        self.wrap = wrap
        self.setEditTriggers(QListView.EditTrigger.NoEditTriggers)
        self.setLayoutMode(QListView.LayoutMode.Batched)  # lays out in slices between events
        self.setBatchSize(500)
        self.selectionModel().currentChanged.connect(self._current_changed)

    def _current_changed(self, current: QModelIndex, _previous: QModelIndex) -> None:
        self.current_row_changed.emit(current.row())
        self.current_text_changed.emit(self.text(current.row()))

    def set_lines(self, lines: Sequence[str]) -> None:
        many = len(lines) > UNIFORM_FROM
        self.setUniformItemSizes(many)
        self.setWordWrap(self.wrap and not many)
        self.setTextElideMode(Qt.TextElideMode.ElideRight)  # the file's name first, the reason after
        self.lines.setStringList(list(lines))

    def count(self) -> int:
        return self.lines.rowCount()

    def text(self, row: int) -> str:
        return self.lines.index(row).data() if 0 <= row < self.count() else ""

    def setCurrentRow(self, row: int) -> None:  # the QListWidget names, so callers read the same
        self.setCurrentIndex(self.lines.index(row))

    def currentRow(self) -> int:
        return self.currentIndex().row()

    def text_at(self, position: QPoint) -> str:
        index = self.indexAt(position)
        return self.text(index.row()) if index.isValid() else ""
