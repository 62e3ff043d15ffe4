"""Stop while epoch 1 is being validated: the epoch is kept and the status bar says what was kept (a user saw
"Stopped before the first epoch ended", no model, and "Training... the run is saved")."""

from __future__ import annotations

from pathlib import Path

import pytest
from PySide6.QtCore import QObject, Qt, Slot
from PySide6.QtWidgets import QPushButton

from tests.gui.helpers import set_up_tiny
from tlstudio.core.training import events as ev

pytestmark = pytest.mark.gui


def _button(root, text: str) -> QPushButton:
    found = [b for b in root.findChildren(QPushButton) if b.text().replace("&", "").strip() == text]
    assert len(found) == 1, text
    return found[0]


def test_stop_during_validation_keeps_the_epoch_and_says_so(window, qtbot, shapes_dir: Path) -> None:
    set_up_tiny(window, qtbot, shapes_dir, depth=1, epochs=6)  # the full path: validation reads files
    stop = _button(window.train_page, "Stop")
    seen: list[str] = []

    class Watcher(QObject):  # lives on the GUI thread: the worker's events reach it queued, as the page's do
        @Slot(object)
        def on_event(self, event) -> None:
            if isinstance(event, ev.Progress) and event.stage == "validating epoch 1" and not seen:
                seen.append(window.train_page.status.text())
                qtbot.mouseClick(stop, Qt.MouseButton.LeftButton)
                seen.append(window.train_page.status.text())

    watcher = Watcher()
    with qtbot.waitSignal(window.train_page.finished, timeout=300000) as finished:
        qtbot.mouseClick(window.model_page.start, Qt.MouseButton.LeftButton)
        window.train_page.session.worker.event.connect(watcher.on_event)
    metrics = finished.args[0]
    assert len(seen) == 2
    assert seen[1].startswith(("Stopping after this validation pass: epoch 1", "Stopping after this batch"))
    assert metrics["status"] == "cancelled" and metrics["epochs"] >= 1  # epoch 1 kept, not thrown away
    assert (Path(window.train_page.run_path) / "model.pt").is_file()
    assert window.statusBar().currentMessage().startswith(f"Stopped after epoch {metrics['epochs']} of 6")
    assert "Stopped after epoch" in window.train_page.status.text()
    assert window.train_page.bar.text() == f"Stopped after {metrics['epochs']} epoch(s)"


def test_a_finished_bar_reads_done_not_its_last_stage(window, qtbot, shapes_dir: Path) -> None:
    """A user saw a finished run's bar still read "Reading training files ... 300/300"."""
    from tests.gui.helpers import train_tiny

    metrics = train_tiny(window, qtbot, shapes_dir, depth=1)
    assert metrics["status"] == "completed"
    assert window.train_page.bar.text() == "Done" and window.train_page.bar.value() == window.train_page.bar.maximum()
