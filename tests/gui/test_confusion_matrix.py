"""The confusion matrix stays readable from 2 to 50 classes (a user saw "17..." and "redicte 0" at 10)."""

from __future__ import annotations

import pytest
from PySide6.QtWidgets import QApplication

from tlstudio.gui.widgets.confusion import ConfusionMatrix

pytestmark = pytest.mark.gui


@pytest.mark.parametrize("n", [2, 10, 50])
def test_every_count_fits_its_cell_and_names_are_whole_or_tipped(qtbot, n: int) -> None:
    classes = [f"class number {i} with a long name" if i % 3 == 0 else f"c{i}" for i in range(n)]
    matrix = [[(150 + r if r == c else (r * c) % 10) for c in range(n)] for r in range(n)]
    table = ConfusionMatrix()
    qtbot.addWidget(table)
    table.resize(520, 420)
    table.show()
    table.set_matrix(classes, matrix)
    QApplication.processEvents()
    metrics = table.fontMetrics()
    for row in range(n):
        for col in range(n):
            lines = table.item(row, col).text().split("\n")
            assert lines[0] == str(matrix[row][col])
            width = table.columnWidth(col)
            assert all(metrics.horizontalAdvance(line) + 4 <= width for line in lines), (row, col, width)
            assert metrics.height() * len(lines) <= table.rowHeight(row)
    header = table.horizontalHeader()
    for col, name in enumerate(classes):
        assert table.horizontalHeaderItem(col).text() == name  # drawn elided where short of room: tooltip whole
        assert name in table.horizontalHeaderItem(col).toolTip() and name in table.verticalHeaderItem(col).toolTip()
    if n >= 10:
        assert header.rotated  # narrow columns write their names upwards instead of cutting them to "redicte"
    grab = table.grab()
    assert not grab.isNull()


def test_ctrl_wheel_zooms_and_a_click_names_the_cell(qtbot) -> None:
    from PySide6.QtCore import QPoint, QPointF, Qt
    from PySide6.QtGui import QWheelEvent

    table = ConfusionMatrix()
    qtbot.addWidget(table)
    table.resize(300, 300)
    table.show()
    table.set_matrix([f"k{i}" for i in range(30)], [[1] * 30 for _ in range(30)])
    before = table.columnWidth(0)
    wheel = QWheelEvent(QPointF(50, 50), QPointF(50, 50), QPoint(0, 0), QPoint(0, 120), Qt.MouseButton.NoButton,
                        Qt.KeyboardModifier.ControlModifier, Qt.ScrollPhase.NoScrollPhase, False)
    QApplication.sendEvent(table.viewport(), wheel)
    assert table.columnWidth(0) > before
    with qtbot.waitSignal(table.cell_chosen) as chosen:
        rect = table.visualItemRect(table.item(1, 2))
        qtbot.mouseClick(table.viewport(), Qt.MouseButton.LeftButton, pos=rect.center())
    assert chosen.args == ["k1", "k2"]
