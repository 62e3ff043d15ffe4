"""Compare ranks only runs on the same data (a user saw spoken digits 'win' against flowers)."""

from __future__ import annotations

from pathlib import Path

import pytest
from PySide6.QtCore import Qt

from tests.gui.helpers import train, train_tiny

pytestmark = pytest.mark.gui


def test_runs_on_other_data_are_not_ranked_together(window, qtbot, shapes_dir: Path, split_dir: Path,
                                                    monkeypatch) -> None:
    train_tiny(window, qtbot, shapes_dir)
    monkeypatch.setattr(type(window), "_ask_new_project", lambda self, folder: "same")  # "Use it in this project"
    window.open_data_folder(str(split_dir))
    qtbot.waitUntil(lambda: window.state.spec is not None and window.state.spec.split_source == "folders",
                    timeout=30000)
    qtbot.waitUntil(lambda: bool(window.model_page.rows), timeout=60000)
    train_tiny(window, qtbot)
    page = window.compare_page
    window.steps.setCurrentRow(5)
    assert page.table.rowCount() == 2  # both runs are listed in the project
    assert {page.table.item(row, 2).text() for row in range(2)} == {"none (from scratch)"}
    page.table.setFocus()
    qtbot.keyClick(page.table, "a", modifier=Qt.KeyboardModifier.ControlModifier)  # the user selects both rows
    text = page.verdict.text()
    assert "won" not in text and "not ranked" in text and shapes_dir.name in text


def test_every_backbone_names_its_own_pretraining() -> None:
    from tlstudio.core.models.registry import pretraining_of

    assert pretraining_of("mobilenet_v2") == "ImageNet" and pretraining_of("yamnet") == "AudioSet"
    assert pretraining_of("wav2vec2_base") == "LibriSpeech"
    assert pretraining_of("yamnet", "none") == "none (from scratch)"


def test_the_scratch_twin_says_its_time_first_and_offers_a_shorter_budget(window, qtbot, shapes_dir: Path,
                                                                          monkeypatch) -> None:
    """A user's "Does transfer help?" started a run with an ETA of 2 h 55 without a word first."""
    from PySide6.QtWidgets import QMessageBox

    from tlstudio.gui.main_window import MainWindow
    from tlstudio.gui.scratch_twin import SHORT_SCRATCH_EPOCHS

    train(window, qtbot, shapes_dir, epochs=5)  # pretrained: a run to compare with
    monkeypatch.undo()  # the conftest's automatic answer: here the real question is asked
    asked: list[str] = []

    def answer(box: QMessageBox) -> int:
        asked.append(box.text())
        if len(asked) == 1:  # first: cancel; nothing may start
            box.button(QMessageBox.StandardButton.Cancel).click()
        else:  # then: the shorter budget
            next(b for b in box.buttons() if b.text() == f"{SHORT_SCRATCH_EPOCHS} epochs").click()
        return 0

    monkeypatch.setattr(QMessageBox, "exec", answer)
    monkeypatch.setattr(MainWindow, "_ask_before_closing", lambda self: True)
    monkeypatch.setattr(MainWindow, "_ask_save_changes", lambda self: "discard")
    window.steps.setCurrentRow(5)
    page = window.compare_page
    qtbot.mouseClick(page.transfer, Qt.MouseButton.LeftButton)
    assert len(asked) == 1 and "from random weights for 5 epochs" in asked[0] and "on this computer" in asked[0]
    assert not window.train_page.is_running() and len(window.state.project.runs) == 1
    with qtbot.waitSignal(window.train_page.finished, timeout=300000) as finished:
        qtbot.mouseClick(page.transfer, Qt.MouseButton.LeftButton)
    assert finished.args[0]["epochs_planned"] == SHORT_SCRATCH_EPOCHS
    qtbot.waitUntil(lambda: not window.train_page.is_running(), timeout=30000)
