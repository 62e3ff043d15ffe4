"""Percentages on bars are readable where the bar ends, in light and dark mode (WCAG contrast >= 3)."""

from __future__ import annotations

import numpy as np
import pytest
from PySide6.QtGui import QColor, QImage
from PySide6.QtWidgets import QApplication, QProgressBar

from tests.gui.audit import contrast_ratio
from tlstudio.gui.style import apply_style
from tlstudio.gui.widgets.contrast_bar import ContrastBar

pytestmark = pytest.mark.gui


def contrast(a: QColor, b: QColor) -> float:
    """WCAG contrast of two colours (the layout audit's formula)."""
    return float(contrast_ratio(np.array([a.red(), a.green(), a.blue()]), np.array([b.red(), b.green(), b.blue()])))


def _text_contrast(bar: QProgressBar) -> tuple[float, float]:
    """The best contrast of the text's pixels against what lies under them, left and right of the fill's end."""
    bar.setTextVisible(True)
    with_text = bar.grab().toImage().convertToFormat(QImage.Format.Format_RGB32)
    bar.setTextVisible(False)
    plain = bar.grab().toImage().convertToFormat(QImage.Format.Format_RGB32)
    bar.setTextVisible(True)
    ratio = with_text.width() / bar.width()
    end = round(bar.width() * bar.value() / bar.maximum() * ratio)
    best = [-1.0, -1.0]  # -1: no text on that side
    for y in range(with_text.height()):
        for x in range(with_text.width()):
            drawn, under = with_text.pixelColor(x, y), plain.pixelColor(x, y)
            if drawn != under and abs(x - end) > 2 * ratio:
                side = 0 if x < end else 1
                best[side] = max(best[side], contrast(drawn, under))
    return best[0], best[1]


def _readable(bar: QProgressBar, value: int) -> list[int]:
    """Per pixel column, how many of the text's pixels stand out (WCAG >= 3) from what lies under them."""
    bar.setValue(value)
    bar.setTextVisible(True)
    with_text = bar.grab().toImage().convertToFormat(QImage.Format.Format_RGB32)
    bar.setTextVisible(False)
    plain = bar.grab().toImage().convertToFormat(QImage.Format.Format_RGB32)
    bar.setTextVisible(True)
    return [sum(contrast(with_text.pixelColor(x, y), plain.pixelColor(x, y)) >= 3 for y in range(plain.height()))
            for x in range(plain.width())]


@pytest.fixture(params=[False, True], ids=["light", "dark"])
def dark(request) -> bool:
    """Each test in light and in dark mode; the light style is restored after it."""
    apply_style(QApplication.instance(), request.param)
    yield request.param
    apply_style(QApplication.instance(), False)


def _bar(qtbot, width: int, text_format: str, value: int = 0) -> ContrastBar:
    bar = ContrastBar()
    qtbot.addWidget(bar)
    bar.resize(width, 24)
    bar.setRange(0, 1000)
    bar.setValue(value)
    bar.setFormat(text_format)
    bar.show()
    return bar


@pytest.mark.parametrize("value", [497, 520])
def test_no_letter_vanishes_where_the_fill_ends(qtbot, dark: bool, value: int) -> None:
    """Every letter right of the fill's end shows as it does over an empty bar, and every letter left of it as
    over a full one: Qt's own bar drew "Scanning" as "Scann" in light mode (white letters on the white groove)."""
    bar = _bar(qtbot, 420, "Scanning… 120 / 300 files")
    shown, empty, full = _readable(bar, value), _readable(bar, 0), _readable(bar, 1000)
    end = round(len(shown) * value / 1000)
    margin = 3 * len(shown) // bar.width()
    right = sum(shown[end + margin:]), sum(empty[end + margin:])
    left = sum(shown[: end - margin]), sum(full[: end - margin])
    assert right[1] > 0 and left[1] > 0 and right[0] >= 0.9 * right[1] and left[0] >= 0.9 * left[1], (left, right)


@pytest.mark.parametrize("value", [239, 490, 515, 660])  # the fill ends before, inside and after the text
def test_the_text_is_readable_on_both_sides_of_the_fill(qtbot, dark: bool, value: int) -> None:
    bar = _bar(qtbot, 240, f"{value / 10:.1f}%", value)
    sides = [side for side in _text_contrast(bar) if side >= 0]
    assert sides and min(sides) >= 3, sides


def test_check_boxes_are_visible_in_both_modes(qtbot, dark: bool) -> None:
    """A user could hardly find the test-time augmentation box in dark mode (WCAG 3:1 for a control)."""
    from PySide6.QtWidgets import QCheckBox

    box = QCheckBox("Test-time augmentation")
    qtbot.addWidget(box)
    box.resize(220, 24)
    box.show()
    from PySide6.QtWidgets import QStyle, QStyleOptionButton

    option = QStyleOptionButton()
    box.initStyleOption(option)
    area = box.style().subElementRect(QStyle.SubElement.SE_CheckBoxIndicator, option, box)
    image = box.grab().toImage().convertToFormat(QImage.Format.Format_RGB32)
    ratio = image.width() / box.width()
    background = image.pixelColor(image.width() - 2, image.height() // 2)
    indicator = max(contrast(image.pixelColor(x, y), background)
                    for x in range(int(area.left() * ratio), int((area.right() + 1) * ratio))
                    for y in range(int(area.top() * ratio), int((area.bottom() + 1) * ratio)))
    assert indicator >= 3, indicator
