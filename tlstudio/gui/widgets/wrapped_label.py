"""A word-wrapped label whose minimum height is the height its text needs at the width it has.

Qt lays out a word-wrapped QLabel by height-for-width, which a QSplitter (and a page sized by its minimum)
never asks for: inside a splitter column such a label was given 79 px of the 84 its lines need, or squeezed
the confusion matrix under it. This one reports its real need as its minimum, and asks for a new layout when a
new width changes it.
"""

from __future__ import annotations

from PySide6.QtCore import QSize
from PySide6.QtWidgets import QLabel


class WrappedLabel(QLabel):
    def __init__(self, text: str = "", parent=None) -> None:
        super().__init__(text, parent)
        self.setWordWrap(True)
        self._needed = 0

    def minimumSizeHint(self) -> QSize:
        hint = super().minimumSizeHint()
        if self.width() > 0 and self.text():
            return QSize(hint.width(), max(hint.height(), self.heightForWidth(self.width())))
        return hint

    def resizeEvent(self, event) -> None:
        super().resizeEvent(event)
        needed = self.heightForWidth(self.width()) if self.text() else 0
        if needed != self._needed:
            self._needed = needed
            self.updateGeometry()

    def setText(self, text: str) -> None:
        super().setText(text)
        self._needed = -1  # measured again at the next resize or layout
        self.updateGeometry()
