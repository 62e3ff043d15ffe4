"""A page in a scroll area that gives it the viewport's size, or the least the page needs when the window is
smaller: then the page scrolls down instead of squeezing its texts (the layout audit found word-wrapped labels
cut to 23 px of the 28 they need at the minimum window size).

QScrollArea's own `widgetResizable` sizes a page whose layout has height-for-width (any word-wrapped label)
to its *preferred* height: the Train page's plots then asked for 1,241 px and scrolled at 1440x900. Here the
page gets its *minimum* height for the width it has (QLayout.totalMinimumHeightForWidth), refitted whenever
its layout changes.
"""

from __future__ import annotations

from PySide6.QtCore import QEvent, QObject
from PySide6.QtWidgets import QScrollArea, QWidget


class PageArea(QScrollArea):
    def __init__(self, page: QWidget, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setFrameShape(QScrollArea.Shape.NoFrame)
        self.setWidgetResizable(False)
        self.setWidget(page)
        page.installEventFilter(self)

    def page(self) -> QWidget:
        return self.widget()

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        if watched is self.widget() and event.type() == QEvent.Type.LayoutRequest:
            self.fit()
        return False

    def resizeEvent(self, event) -> None:
        super().resizeEvent(event)
        self.fit()

    def needed_height(self, width: int) -> int:
        page = self.widget()
        layout = page.layout()
        least = page.minimumSizeHint().height()  # what every widget's minimum adds up to
        if layout is not None and layout.hasHeightForWidth():  # and wrapped texts, at this width
            return max(least, layout.totalMinimumHeightForWidth(width))
        return least

    def fit(self) -> None:
        page = self.widget()
        if page is None:
            return
        room = self.maximumViewportSize()  # the viewport without scroll bars
        width = max(room.width(), page.minimumSizeHint().width())
        height = self.needed_height(width)
        if height > room.height():  # a vertical scroll bar will take some of the width
            width = max(room.width() - self.verticalScrollBar().sizeHint().width(), page.minimumSizeHint().width())
            height = self.needed_height(width)
        page.resize(width, max(height, room.height()))


def show_rows(view, rows: int = 2) -> None:
    """A table never squeezed below its header and `rows` rows: at a small window its page scrolls instead."""
    view.setMinimumHeight(view.horizontalHeader().sizeHint().height() + rows * (
        view.verticalHeader().defaultSectionSize() + 1) + 2 * view.frameWidth())
