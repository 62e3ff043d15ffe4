"""A relaunch shows the last project at once from what was remembered, reads the folder again in the
background, and says what changed (issue 23, finding 18; the time is measured in benchmarks/bench_relaunch.py)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests.gui.helpers import open_folder

pytestmark = pytest.mark.gui


def _photos(folder: Path, per_class: int = 200) -> Path:
    """Enough files that reading them again takes clearly longer than recalling the last scan."""
    from PIL import Image

    for name in ("circles", "squares", "triangles"):
        (folder / name).mkdir(parents=True)
        for index in range(per_class):
            Image.new("RGB", (24, 24), (index, 80, 160)).save(folder / name / f"{name}_{index:04d}.png")
    return folder


def test_a_relaunch_shows_the_project_from_memory_then_what_changed(window, qtbot, tmp_path: Path) -> None:
    folder = _photos(tmp_path / "photos")
    open_folder(window, qtbot, folder)
    qtbot.waitUntil(lambda: not window.data_page.task.thread.isRunning(), timeout=30000)
    window.save_project(path=tmp_path / "shapes.tlsproj")
    window.close()
    shutil.copy(next((folder / "circles").iterdir()), folder / "circles" / "one more.png")

    from tlstudio.gui.app import create_window, start_up

    _app, again = create_window()
    qtbot.addWidget(again)
    seen: list[str] = []
    again.state.data_changed.connect(lambda spec: seen.append(again.data_page.summary.text()))
    again.show()
    start_up(again)
    qtbot.waitUntil(lambda: again.data_page.table.rowCount() == 3, timeout=10000)
    assert "600 images" in again.data_page.summary.text()  # as it was saved, before the folder is read again
    assert again.data_page.progress.isVisible() and "Checking the folder" in again.data_page.progress.bar.text()
    qtbot.waitUntil(lambda: "601 images" in again.data_page.summary.text(), timeout=60000)
    assert "1 file(s) added" in again.statusBar().currentMessage()
    qtbot.waitUntil(lambda: not again.data_page.progress.isVisible(), timeout=10000)
    assert "Choose a data folder" not in " ".join(seen)
    again.train_page.shutdown()
