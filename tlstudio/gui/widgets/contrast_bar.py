"""A progress bar whose text is readable wherever the bar ends (a user read 23.9% as "3.9%": white on white).

The style draws the groove and the filled part with no text; the text is drawn twice, clipped: in the
highlight's text colour over the filled part, in the text colour over the rest. The WCAG contrast
of both pairs is checked by tests/gui/test_contrast_bar.py in light and dark mode.
"""

from __future__ import annotations

from PySide6.QtCore import QRect, Qt
from PySide6.QtGui import QPainter, QPaintEvent, QPalette
from PySide6.QtWidgets import QProgressBar, QStyle, QStyleOptionProgressBar


class ContrastBar(QProgressBar):
    def text(self) -> str:
        """While the total is unknown (a busy bar), the words of the format without its numbers: "Scanning…"
        instead of Qt's blank."""
        if self.maximum() == self.minimum() == 0:
            return self.format().split("%", 1)[0].strip()
        return super().text()

    def filled_width(self) -> int:
        span = self.maximum() - self.minimum()
        if span <= 0:
            return 0
        return round(self.width() * (self.value() - self.minimum()) / span)

    def paintEvent(self, _event: QPaintEvent) -> None:
        painter = QPainter(self)
        option = QStyleOptionProgressBar()
        self.initStyleOption(option)
        option.textVisible = False
        self.style().drawControl(QStyle.ControlElement.CE_ProgressBar, option, painter, self)
        if not self.isTextVisible():
            return
        text = self.text()
        filled = self.filled_width()
        whole = self.rect()
        palette = self.palette()
        for clip, role in ((QRect(0, 0, filled, whole.height()), QPalette.ColorRole.HighlightedText),
                           (QRect(filled, 0, whole.width() - filled, whole.height()), QPalette.ColorRole.Text)):
            painter.save()
            painter.setClipRect(clip)
            painter.setPen(palette.color(role))
            painter.drawText(whole, Qt.AlignmentFlag.AlignCenter, text)
            painter.restore()
