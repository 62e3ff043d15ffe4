"""A large folder on the Data page: long lists are views over models (virtualised), never a widget per line."""

from __future__ import annotations

from pathlib import Path

import pytest

from tlstudio.demo import make_image_folder
from tlstudio.gui.widgets.line_list import UNIFORM_FROM, LineList

pytestmark = pytest.mark.gui


def test_a_list_of_100000_lines_is_one_model_and_one_row_height(qtbot) -> None:
    view = LineList(wrap=True)
    qtbot.addWidget(view)
    lines = [f"✗ class{i % 10}/{i:06d}.jpg: cannot be decoded" for i in range(100_000)]
    view.set_lines(lines)
    assert view.count() == 100_000 and view.uniformItemSizes() and not view.wordWrap()
    chosen: list[str] = []
    view.current_text_changed.connect(chosen.append)
    view.setCurrentRow(99_999)
    assert chosen == [lines[-1]] and view.currentRow() == 99_999
    view.set_lines(lines[:3])  # a short list wraps long lines instead
    assert view.count() == 3 and view.wordWrap() and not view.uniformItemSizes()
    assert UNIFORM_FROM < 100_000


def test_every_unreadable_file_is_listed_on_the_data_page(window, qtbot, tmp_path: Path) -> None:
    folder = make_image_folder(tmp_path / "photos", classes=("circles", "squares"), per_class=6, size=(64, 48),
                               seed=3)
    for index in range(UNIFORM_FROM + 20):  # more problems than a wrapped list would lay out quickly
        (folder / "circles" / f"broken{index:04d}.jpg").write_bytes(b"not a picture")
    window.data_page.open_folder(folder)
    qtbot.waitUntil(lambda: window.state.spec is not None, timeout=60000)
    problems = window.data_page.problems
    broken = [problems.text(row) for row in range(problems.count()) if "broken" in problems.text(row)]
    assert len(broken) == UNIFORM_FROM + 20 and problems.uniformItemSizes()
    assert broken[0].startswith("✗ circles/broken0000.jpg")
