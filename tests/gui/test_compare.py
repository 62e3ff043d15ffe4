"""Compare ranks only runs on the same data (a user saw spoken digits 'win' against flowers)."""

from __future__ import annotations

from pathlib import Path

import pytest
from PySide6.QtCore import Qt

from tests.gui.helpers import train_tiny

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
