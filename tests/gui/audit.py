"""A layout audit of a window as it is drawn: it walks the widget tree and names every text a user cannot read
whole (clipped labels, buttons, table cells and headers), text drawn with too little contrast against what lies
under it (WCAG ratio < 3), widgets that overlap or stick out of their parent, and a horizontal scrollbar that
one long line causes. Used by tests/gui/test_layout_audit.py over many states of every page.

Elided on purpose is fine: a text that ends in "…" (or is cut in the middle with "…") and has a tooltip.
"""

from __future__ import annotations

import re

import numpy as np
from PySide6.QtCore import QRect, Qt
from PySide6.QtGui import QImage
from PySide6.QtWidgets import (
    QAbstractButton,
    QAbstractItemView,
    QAbstractScrollArea,
    QCheckBox,
    QComboBox,
    QGroupBox,
    QHeaderView,
    QLabel,
    QListView,
    QPlainTextEdit,
    QProgressBar,
    QPushButton,
    QRadioButton,
    QScrollArea,
    QScrollBar,
    QSplitterHandle,
    QStackedWidget,
    QStyle,
    QTableView,
    QTabWidget,
    QTextEdit,
    QWidget,
)

TAGS = re.compile(r"<[^>]+>")
MIN_CONTRAST = 3.0


def plain(text: str) -> str:
    import html

    return html.unescape(TAGS.sub("", text.replace("<br>", "\n").replace("<br/>", "\n")))


def elided_on_purpose(text: str, tooltip: str) -> bool:
    return "…" in text and bool(tooltip.strip())


def shown(widget: QWidget) -> bool:
    return widget.isVisible() and widget.width() > 0 and widget.height() > 0


def _luminance(rgb: np.ndarray) -> np.ndarray:
    c = rgb.astype(np.float64) / 255.0
    c = np.where(c <= 0.03928, c / 12.92, ((c + 0.055) / 1.055) ** 2.4)
    return 0.2126 * c[..., 0] + 0.7152 * c[..., 1] + 0.0722 * c[..., 2]


def contrast_ratio(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """WCAG contrast of RGB colours (arrays of [..., 3]), element by element: 1 (none) to 21."""
    one, other = _luminance(a), _luminance(b)
    return (np.maximum(one, other) + 0.05) / (np.minimum(one, other) + 0.05)


def _pixels(widget: QWidget) -> np.ndarray:
    image = widget.grab().toImage().convertToFormat(QImage.Format.Format_RGB32)
    array = np.frombuffer(image.constBits(), dtype=np.uint8, count=image.sizeInBytes())
    array = array.reshape(image.height(), image.bytesPerLine() // 4, 4)[:, : image.width(), :3]
    return array[..., ::-1].copy()  # BGRA in memory -> RGB


def text_contrast(widget: QWidget) -> float | None:
    """The best contrast between the text's pixels and what lies under them: the widget grabbed with its text,
    then without it. None when no pixel changed (nothing drawn: an empty or hidden text)."""
    text = widget.text()
    with_text = _pixels(widget)
    widget.blockSignals(True)
    try:
        widget.setText("")
        without = _pixels(widget)
    finally:
        widget.setText(text)
        widget.blockSignals(False)
    if with_text.shape != without.shape:
        return None
    changed = np.any(with_text != without, axis=-1)
    if not changed.any():
        return None
    return float(contrast_ratio(with_text[changed], without[changed]).max())


def _name(widget: QWidget) -> str:
    text = ""
    for getter in ("text", "title", "accessibleName", "objectName"):
        value = getattr(widget, getter, None)
        if callable(value):
            try:
                value = value()
            except TypeError:
                continue
        if isinstance(value, str) and value.strip():
            text = plain(value).strip().replace("\n", " ")
            break
    return f"{type(widget).__name__}({text[:60]!r})"


def _scrolled_content(widget: QWidget) -> bool:
    """The content of a scroll area: larger than its viewport by design."""
    viewport = widget.parentWidget()
    area = viewport.parentWidget() if viewport is not None else None
    return isinstance(area, QAbstractScrollArea) and area.viewport() is viewport


def clipped_label(label: QLabel) -> str | None:
    text = label.text()
    if not plain(text).strip() or not label.pixmap().isNull():
        return None
    if elided_on_purpose(plain(text), label.toolTip()):
        return None
    room = label.contentsRect()
    if label.wordWrap():
        needed = label.heightForWidth(room.width()) if label.hasHeightForWidth() else label.sizeHint().height()
        if needed > room.height() + 2:
            return f"{_name(label)} needs {needed} px of height, has {room.height()}"
        return None
    needed = label.minimumSizeHint().width() - (label.width() - room.width())
    if needed > room.width() + 2:
        return f"{_name(label)} needs {needed} px of width, has {room.width()}"
    return None


def clipped_button(button: QAbstractButton) -> str | None:
    if not button.text().strip():
        return None
    if elided_on_purpose(button.text(), button.toolTip()):
        return None
    needed = button.sizeHint().width()
    if needed > button.width() + 2:
        return f"{_name(button)} needs {needed} px of width, has {button.width()}"
    return None


def clipped_cells(view: QTableView, limit: int = 60) -> list[str]:
    """Cells whose text is wider than the column (a tooltip with the whole text makes it fine), and header
    labels wider than their section."""
    model = view.model()
    if model is None:
        return []
    found: list[str] = []
    metrics = view.fontMetrics()
    style = view.style()
    cell_margin = 2 * (style.pixelMetric(QStyle.PixelMetric.PM_FocusFrameHMargin, None, view) + 1)  # as Qt's
    header_margin = 2 * style.pixelMetric(QStyle.PixelMetric.PM_HeaderMargin, None, view)
    for row in range(min(model.rowCount(), limit)):
        if view.isRowHidden(row):
            continue
        for col in range(model.columnCount()):
            if view.isColumnHidden(col):
                continue
            index = model.index(row, col)
            text = str(model.data(index, Qt.ItemDataRole.DisplayRole) or "")
            if not text or view.indexWidget(index) is not None:
                continue
            tip = str(model.data(index, Qt.ItemDataRole.ToolTipRole) or "")
            needed = max(metrics.horizontalAdvance(line) for line in text.split("\n")) + cell_margin
            if needed > view.columnWidth(col) and text not in tip:
                found.append(f"{_name(view)} cell ({row}, {col}) {text[:40]!r} needs {needed} px, "
                             f"column is {view.columnWidth(col)}")
    for header, orientation in ((view.horizontalHeader(), Qt.Orientation.Horizontal),
                                (view.verticalHeader(), Qt.Orientation.Vertical)):
        if not shown(header) or getattr(header, "rotated", False):
            continue
        hm = header.fontMetrics()
        count = model.columnCount() if orientation == Qt.Orientation.Horizontal else min(model.rowCount(), limit)
        for section in range(count):
            if header.isSectionHidden(section):
                continue
            text = str(model.headerData(section, orientation, Qt.ItemDataRole.DisplayRole) or "")
            tip = str(model.headerData(section, orientation, Qt.ItemDataRole.ToolTipRole) or "")
            if not text or elided_on_purpose(text, tip):
                continue
            if orientation == Qt.Orientation.Horizontal:
                needed, room = hm.horizontalAdvance(text) + header_margin, header.sectionSize(section)
            else:
                needed, room = hm.horizontalAdvance(text) + header_margin, header.width()
            if needed > room + 1:
                found.append(f"{_name(view)} header {text[:40]!r} needs {needed} px, has {room}")
    return found


def too_few_rows(view: QAbstractItemView, least: int = 2) -> str | None:
    """A table or list squeezed until it shows fewer than two whole rows of what it holds (a user at 960x600
    saw a confusion matrix of column names and no cell)."""
    model = view.model()
    if model is None or model.rowCount() == 0 or (isinstance(view, QListView)
                                                  and view.viewMode() == QListView.ViewMode.IconMode):
        return None
    wanted = min(least, sum(not (isinstance(view, QTableView) and view.isRowHidden(r))
                            for r in range(min(model.rowCount(), least + 5))))
    room = view.viewport().rect()
    top = view.indexAt(room.topLeft()).row() if view.indexAt(room.topLeft()).isValid() else 0
    whole = 0
    for row in range(top, min(model.rowCount(), top + least + 5)):
        if isinstance(view, QTableView) and view.isRowHidden(row):
            continue
        rect = view.visualRect(model.index(row, 0))
        whole += rect.height() > 0 and room.contains(rect.adjusted(0, 0, 0, -1).topLeft()) and \
            rect.bottom() <= room.bottom() + 1
    if whole < wanted:
        return f"{_name(view)} shows {whole} whole row(s) of {model.rowCount()}"
    return None


def long_line_scrollbar(view: QAbstractScrollArea) -> str | None:
    """A list or text box that scrolls sideways: one long line made it wider than the page."""
    if isinstance(view, (QListView, QPlainTextEdit, QTextEdit, QScrollArea)) and view.horizontalScrollBar().isVisible():
        return f"{_name(view)} scrolls sideways (a line wider than the box)"
    return None


def overlaps(parent: QWidget) -> list[str]:
    """Visible siblings laid over each other, and children that stick out of their parent (cut off)."""
    if isinstance(parent, (QStackedWidget, QAbstractScrollArea, QTabWidget, QComboBox, QHeaderView)):
        return []
    children = [c for c in parent.findChildren(QWidget, options=Qt.FindChildOption.FindDirectChildrenOnly)
                if shown(c) and not c.isWindow() and not isinstance(c, (QScrollBar, QSplitterHandle))]
    found = []
    inside = parent.rect()
    for i, a in enumerate(children):
        ga = a.geometry()
        cut = ga.intersected(inside)
        if (cut.width() < ga.width() - 2 or cut.height() < ga.height() - 2) and not _scrolled_content(a):
            found.append(f"{_name(a)} is cut off by {_name(parent)}: {_rect(ga)} in {_rect(inside)}")
        for b in children[i + 1:]:
            common = ga.intersected(b.geometry())
            if common.width() > 2 and common.height() > 2:
                found.append(f"{_name(a)} {_rect(ga)} overlaps {_name(b)} {_rect(b.geometry())}")
    return found


def _rect(r: QRect) -> str:
    return f"[{r.x()},{r.y()} {r.width()}x{r.height()}]"


def audit(root: QWidget, contrast: bool = True) -> list[str]:
    """Every problem found in the visible part of `root`, one line each."""
    problems: list[str] = []
    widgets = [root, *root.findChildren(QWidget)]
    for widget in widgets:
        if not shown(widget):
            continue
        if isinstance(widget, QLabel):
            problem = clipped_label(widget)
        elif isinstance(widget, (QPushButton, QCheckBox, QRadioButton)):
            problem = clipped_button(widget)
        else:
            problem = None
        if problem:
            problems.append("clipped: " + problem)
        if contrast and isinstance(widget, (QLabel, QPushButton, QCheckBox, QRadioButton)) and widget.text() \
                and widget.isEnabled() and (not isinstance(widget, QLabel) or widget.pixmap().isNull()):
            ratio = text_contrast(widget)
            if ratio is not None and ratio < MIN_CONTRAST:
                problems.append(f"contrast: {_name(widget)} text at {ratio:.2f}:1")
        if isinstance(widget, QTableView):
            problems += ["clipped: " + p for p in clipped_cells(widget)]
        if isinstance(widget, QAbstractItemView) and not isinstance(widget, QHeaderView):
            problem = too_few_rows(widget)
            if problem:
                problems.append("squeezed: " + problem)
        if isinstance(widget, QAbstractScrollArea):
            problem = long_line_scrollbar(widget)
            if problem:
                problems.append("scrollbar: " + problem)
        if isinstance(widget, QGroupBox) and widget.title():
            needed = widget.fontMetrics().horizontalAdvance(widget.title()) + 30
            if needed > widget.width():
                problems.append(f"clipped: {_name(widget)} title needs {needed} px, has {widget.width()}")
        if not isinstance(widget, (QProgressBar,)):
            problems += ["overlap: " + p for p in overlaps(widget)]
    return problems
