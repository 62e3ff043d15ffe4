"""Export to a folder the user names (a user's dialog started in the home folder and refused a new name)."""

from __future__ import annotations

from pathlib import Path

import pytest
from PySide6.QtCore import Qt

from tests.gui.helpers import train_tiny

pytestmark = pytest.mark.gui


def test_export_proposes_a_new_folder_and_makes_it(window, qtbot, shapes_dir: Path, tmp_path: Path,
                                                   monkeypatch) -> None:
    from PySide6.QtWidgets import QFileDialog

    train_tiny(window, qtbot, shapes_dir)
    window.steps.setCurrentRow(4)
    page = window.try_page
    asked: list[str] = []
    target = tmp_path / "exports" / "my classifier"  # a folder that does not exist yet, typed by the user

    def save_dialog(_parent, _title, proposed, _filter):
        asked.append(proposed)
        return str(target), ""

    monkeypatch.setattr(QFileDialog, "getSaveFileName", save_dialog)
    with qtbot.waitSignal(page.exported, timeout=120000) as done:
        qtbot.mouseClick(page.export_button, Qt.MouseButton.LeftButton)
    fmt = page.export_format.currentData()
    assert asked[0].endswith(f"-{fmt}") and Path(asked[0]).parent != Path.home()
    assert Path(done.args[0]).parent == target and (target / "model.json").is_file()
    qtbot.waitUntil(page.export_button.isEnabled, timeout=30000)
    qtbot.mouseClick(page.export_button, Qt.MouseButton.LeftButton)  # the next export starts where this one went
    assert Path(asked[1]).parent == target.parent
    with qtbot.waitSignal(page.exported, timeout=120000):
        pass  # (the same folder again: exported over)
