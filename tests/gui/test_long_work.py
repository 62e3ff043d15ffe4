"""Long work in Evaluate and Try & export shows counts and the time left, and stops on Cancel keeping what is
finished (issue 23: a user waited on "Evaluating…" with no count, no estimate and no way to stop)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from PySide6.QtWidgets import QFileDialog

from tests.gui.helpers import train_tiny
from tests.gui.walk import click, go_to_step

pytestmark = pytest.mark.gui


def _many(shapes_dir: Path, root: Path, copies: int = 8) -> Path:
    for copy in range(copies):
        for source in shapes_dir.rglob("*.jpg"):
            target = root / source.parent.name / f"{copy}_{source.name}"
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(source, target)
    return root


def _cancel_when_counting(qtbot, progress, seen: list[str]):
    def look(done: int, total: int) -> None:
        if not seen and 0 < done < total:
            seen.append(progress.bar.text())
            click(qtbot, progress.cancel)

    return look


def test_evaluation_prediction_and_export_show_progress_and_stop(window, qtbot, shapes_dir: Path, tmp_path: Path,
                                                                  monkeypatch) -> None:
    window.resize(1440, 900)
    train_tiny(window, qtbot, shapes_dir)
    many = _many(shapes_dir, tmp_path / "many")
    # Evaluate on another folder: counts and time left, then Cancel keeps the earlier results
    go_to_step(window, qtbot, "Evaluate")
    page = window.evaluate_page
    before = page.headline.text()
    monkeypatch.setattr(QFileDialog, "getExistingDirectory", lambda *_a, **_k: str(many))
    seen: list[str] = []
    click(qtbot, page.other)
    page.task.progress.connect(_cancel_when_counting(qtbot, page.progress, seen))
    qtbot.waitUntil(lambda: not page.progress.isVisible(), timeout=180000)
    assert seen and seen[0].startswith("Evaluating the files of many… ") and " / 576 · " in seen[0]
    assert "ETA" in seen[0] or "estimating time left" in seen[0]
    assert page.headline.text().startswith(before) and "the results shown are the earlier ones" in \
        page.headline.text()
    # Try: predictions stop after the files already done, which are shown
    go_to_step(window, qtbot, "Try & export")
    try_page = window.try_page
    files = sorted(str(p) for p in many.rglob("*.jpg"))
    monkeypatch.setattr(QFileDialog, "getOpenFileNames", lambda *_a, **_k: (files, ""))
    seen = []
    with qtbot.waitSignal(try_page.predicted, timeout=180000) as predicted:
        click(qtbot, try_page.choose)
        try_page.task.progress.connect(_cancel_when_counting(qtbot, try_page.progress, seen))
    kept = len(predicted.args[0])
    assert seen and seen[0].startswith("Predicting… ") and 0 < kept < len(files)
    assert try_page.hint.text().startswith(f"Stopped after {kept} of {len(files)} files")
    # Export: Cancel drops it, and its new folder is gone when it ends
    target = tmp_path / "exports" / "never kept"
    monkeypatch.setattr(QFileDialog, "getSaveFileName", lambda *_a, **_k: (str(target), ""))
    click(qtbot, try_page.export_button)
    assert try_page.progress.isVisible() and try_page.progress.bar.text().startswith("Exporting")
    click(qtbot, try_page.progress.cancel)
    assert try_page.progress.cancel.text() == "Stopping…"
    qtbot.waitUntil(lambda: try_page.export_button.isEnabled(), timeout=180000)
    assert try_page.hint.text() == "Export cancelled: nothing was kept." and not target.exists()
