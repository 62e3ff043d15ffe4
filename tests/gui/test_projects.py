"""Projects save and reopen in the window; "Does transfer help?" trains the twin and compares."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.gui.helpers import train

pytestmark = pytest.mark.gui


def test_transfer_check_and_project_round_trip(window, qtbot, shapes_dir: Path, tmp_path: Path) -> None:
    train(window, qtbot, shapes_dir)
    assert len(window.state.project.runs) == 1
    pretrained_run = window.state.project.runs[0]
    with qtbot.waitSignal(window.train_page.finished, timeout=600000):
        window.compare_page.transfer_check_requested.emit(pretrained_run)
    qtbot.waitUntil(lambda: window.steps.currentRow() == 5, timeout=10000)
    page = window.compare_page
    assert page.table.rowCount() == 2
    assert {row["pretrained"] for row in page.selected()} == {"imagenet", "none"}
    assert "scratch" in page.verdict.text()
    assert len(page.acc_plot.plotItem.listDataItems()) == 2  # both curves overlaid

    saved = window.save_project(path=tmp_path / "study")
    assert saved.name == "study.tlsproj"
    window.close()
    from tlstudio.gui.main_window import MainWindow

    again = MainWindow()
    qtbot.addWidget(again)
    again.open_project(saved)
    qtbot.waitUntil(lambda: again.state.spec is not None, timeout=30000)
    assert again.compare_page.table.rowCount() == 2
    assert again.state.run_dir is not None and str(saved) in again.recent_projects()
    assert again.evaluate_page.matrix.rowCount() == 3
    again.close()
