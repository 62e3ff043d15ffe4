"""The split belongs to the data: set on the Data step where it is shown, re-split without reading files."""

from __future__ import annotations

from pathlib import Path

import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QDoubleSpinBox, QWidget

from tests.gui.helpers import open_folder

pytestmark = pytest.mark.gui


def _by_name(root: QWidget, kind: type, name: str):
    found = [w for w in root.findChildren(kind) if w.accessibleName() == name and w.isVisible()]
    assert len(found) == 1, f"{name}: {len(found)} visible"
    return found[0]


def test_changing_the_validation_share_resplits_the_open_folder(window, qtbot, shapes_dir: Path) -> None:
    open_folder(window, qtbot, shapes_dir)
    before = window.state.spec
    assert before.split_settings["val_split"] == pytest.approx(0.2)
    share = _by_name(window.data_page, QDoubleSpinBox, "Validation share")
    assert (share.minimum(), share.maximum()) == (0.0, 0.9)  # the range validate() enforces
    share.setFocus()
    share.selectAll()
    qtbot.keyClicks(share, "0.5")
    qtbot.keyClick(share, Qt.Key.Key_Return)
    qtbot.waitUntil(lambda: window.state.spec is not before, timeout=10000)
    after = window.state.spec
    assert after.split_settings["val_split"] == pytest.approx(0.5) and window.state.config.val_split == 0.5
    assert after.contents is before.contents  # the same reading of the folder: no file was read again
    assert len(after.val) > len(before.val) and len(after.train) + len(after.val) == 72
    assert f"{len(after.train)} to train, {len(after.val)} to validate" in window.data_page.summary.text()


def test_ready_made_folders_offer_no_share(window, qtbot, split_dir: Path) -> None:
    open_folder(window, qtbot, split_dir)
    assert window.state.spec.split_source == "folders"
    assert not window.data_page.split_row.isVisible()


def _answer(window, monkeypatch, answer: str) -> list[str]:
    asked: list[str] = []
    monkeypatch.setattr(type(window), "_ask_new_project", lambda self, folder: (asked.append(folder.name), answer)[1])
    return asked


def test_another_folder_asks_before_it_joins_a_project_with_work(window, qtbot, shapes_dir: Path, split_dir: Path,
                                                                 monkeypatch) -> None:
    """A user saw a second folder silently join the open project (and Compare rank runs of both)."""
    from PySide6.QtWidgets import QFileDialog

    open_folder(window, qtbot, shapes_dir)
    first = window.state.project
    window.state.set_excluded(window.state.spec.train[0].path, True)  # the user's work on this folder
    asked = _answer(window, monkeypatch, "cancel")
    monkeypatch.setattr(QFileDialog, "getExistingDirectory", lambda *_a, **_k: str(split_dir))
    qtbot.mouseClick(window.data_page.choose, Qt.MouseButton.LeftButton)
    assert asked == [split_dir.name] and window.state.project is first
    assert Path(window.state.folder).resolve() == shapes_dir.resolve()  # cancelled: still the first folder

    asked = _answer(window, monkeypatch, "new")
    qtbot.mouseClick(window.data_page.choose, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: window.state.spec is not None and window.state.spec.split_source == "folders",
                    timeout=30000)
    assert asked == [split_dir.name]
    assert window.state.project is not first and window.state.project.excluded == []
    assert first.excluded and Path(first.data).resolve() == shapes_dir.resolve()  # the old project as it was
    assert "Untitled project" in window.windowTitle()


def test_a_project_with_nothing_of_its_own_simply_follows_the_folder(window, qtbot, shapes_dir: Path,
                                                                      split_dir: Path, monkeypatch) -> None:
    open_folder(window, qtbot, shapes_dir)
    window.statusBar().showMessage("Done: validation accuracy 42.9%. See the Evaluate step.")  # the old folder's news
    asked = _answer(window, monkeypatch, "cancel")
    window.open_data_folder(str(split_dir))
    qtbot.waitUntil(lambda: window.state.spec.split_source == "folders", timeout=30000)
    assert asked == []
    assert "42.9%" not in window.statusBar().currentMessage()  # a user read it long after, over another folder

