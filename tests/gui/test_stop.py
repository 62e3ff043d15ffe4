"""Stop while epoch 1 is being validated: the epoch is kept and the status bar says what was kept (a user saw
"Stopped before the first epoch ended", no model, and "Training... the run is saved")."""

from __future__ import annotations

from pathlib import Path

import pytest
from PySide6.QtCore import QObject, Qt, Slot
from PySide6.QtWidgets import QPushButton

from tests.gui.helpers import open_folder, pick_backbone
from tlstudio.core.training import events as ev

pytestmark = pytest.mark.gui


def _button(root, text: str) -> QPushButton:
    found = [b for b in root.findChildren(QPushButton) if b.text().replace("&", "").strip() == text]
    assert len(found) == 1, text
    return found[0]


def test_stop_during_validation_keeps_the_epoch_and_says_so(window, qtbot, shapes_dir: Path) -> None:
    open_folder(window, qtbot, shapes_dir)
    window.state.config.pretrained = "none"
    pick_backbone(window, "mobilenet_v3_small")
    qtbot.waitUntil(lambda: getattr(window.model_page, "_current_key", ("",))[0] == "mobilenet_v3_small",
                    timeout=60000)
    window.model_page.depth.setValue(1)  # the full path: validation reads files, batch by batch
    window.model_page.epochs.setValue(6)
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
