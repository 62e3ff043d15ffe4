"""The map of the files in the window: drawn after training, a dot opens its file, a relabel and a leave-out
are kept in the project, and "Retrain with these changes" trains with them."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from PySide6.QtCore import Qt

from tests.gui.helpers import train
from tlstudio.demo import make_image_folder

pytestmark = pytest.mark.gui


def test_map_relabel_leave_out_and_retrain(window, qtbot, tmp_path: Path) -> None:
    folder = make_image_folder(tmp_path / "shapes", classes=("circles", "squares"), per_class=12, size=(96, 72),
                               seed=4)
    window.data_page.open_folder(folder)
    qtbot.waitUntil(lambda: window.state.spec is not None, timeout=30000)
    assert not window.data_page.map_button.isEnabled()  # no model yet
    window.model_page.epochs.setValue(2)
    with qtbot.waitSignal(window.train_page.finished, timeout=300000):
        window.start_training()
    assert window.data_page.map_button.isEnabled()
    first = window.state.run_dir
    dialog = window.show_map()
    qtbot.waitUntil(lambda: dialog.result is not None, timeout=120000)
    points = dialog.result["points"]
    assert len(points) == 24 and len(dialog.view.points) == 24
    target = next(p for p in points if p["true"] == "circles" and p["split"] == "train")
    dialog.view.point_chosen.emit(target["path"])
    assert dialog.current == target["path"] and "labelled <b>circles</b>" in dialog.details.text()
    dialog.new_label.setCurrentText("squares")
    dialog.relabel.click()
    assert window.state.relabelled() == {target["path"]: "squares"}
    other = next(p for p in points if p["true"] == "squares" and p["split"] == "train")
    dialog.choose(other["path"])
    dialog.leave_out.click()
    assert other["path"] in window.state.excluded()
    spec = window.state.training_spec()
    trained = {s.path: spec.classes[s.label] for s in spec.train}
    assert trained[target["path"]] == "squares" and other["path"] not in trained
    with qtbot.waitSignal(window.train_page.finished, timeout=300000):
        dialog.retrain.click()
    second = window.state.run_dir
    assert second != first
    dataset = json.loads((Path(second) / "dataset.json").read_text())
    labels = {s["path"]: dataset["classes"][s["label"]] for s in dataset["train"]}
    assert labels[target["path"]] == "squares" and other["path"] not in labels
    assert (Path(first) / "map.json").is_file()  # kept: opening the map again draws at once


def test_recommend_sets_the_depth_and_says_why(window, qtbot, tmp_path: Path) -> None:
    folder = make_image_folder(tmp_path / "shapes", classes=("circles", "squares"), per_class=10, size=(96, 72),
                               seed=7)
    window.data_page.open_folder(folder)
    qtbot.waitUntil(lambda: window.state.spec is not None, timeout=30000)
    page = window.model_page
    qtbot.waitUntil(lambda: bool(page.rows) and hasattr(page, "_current_blocks"), timeout=60000)
    window.steps.setCurrentRow(1)
    qtbot.mouseClick(page.recommend_button, Qt.MouseButton.LeftButton)
    assert page.recommend_button.text() == "Cancel"
    qtbot.waitUntil(lambda: page.advice.text().startswith("<b>Recommended"), timeout=300000)
    qtbot.waitUntil(lambda: not page.recommend_task.thread.isRunning(), timeout=10000)
    assert ("Feature extraction" in page.advice.text()) == (page.depth.value() == 0)
    # the button comes back when the task's thread has finished and its done signal reached the GUI thread
    qtbot.waitUntil(lambda: page.recommend_button.isEnabled() and page.recommend_button.text() == "Recommend",
                    timeout=10000)


def test_a_mistake_can_be_relabelled_from_evaluate(window, qtbot, tmp_path: Path) -> None:
    folder = make_image_folder(tmp_path / "shapes", classes=("circles", "squares"), per_class=10, size=(96, 72),
                               seed=9)
    train(window, qtbot, folder, epochs=1)
    page = window.evaluate_page
    path = window.state.spec.val[0].path
    page._show([{"path": path, "true": "circles", "predicted": "squares", "confidence": "0.9"}])
    qtbot.waitUntil(lambda: page.gallery.thumbs.pending() == 0, timeout=30000)
    page._gallery_menu(page.gallery.visualRect(page.gallery.model().index(0, 0)).center())
    relabel = next(a.menu() for a in page._popup.actions() if a.text() == "Relabel as")
    folder_class = window.state.spec.classes[window.state.spec.val[0].label]
    other = next(a for a in relabel.actions() if a.text() != folder_class)
    other.trigger()
    assert window.state.relabelled() == {path: other.text()}
    page._gallery_menu(page.gallery.visualRect(page.gallery.model().index(0, 0)).center())
    assert any(a.text() == "Retrain with these changes" for a in page._popup.actions())
    page._popup.close()


def test_the_map_shows_its_stages_and_can_be_cancelled(window, qtbot, tmp_path: Path) -> None:
    """A user watched "Reading the files... 0%" for a minute (the t-SNE had no progress) with no way to stop."""
    from PySide6.QtCore import Qt

    folder = make_image_folder(tmp_path / "shapes", classes=("circles", "squares"), per_class=60, size=(96, 72),
                               seed=5)
    train(window, qtbot, folder, depth=1, epochs=1)  # fine-tuned: the map reads every file again (no cache)
    dialog = window.show_map()
    qtbot.waitUntil(lambda: dialog.status.text().startswith("Reading the files: "), timeout=60000)
    assert dialog.cancel.isVisible()
    qtbot.mouseClick(dialog.cancel, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: dialog.status.text() in ("Stopped: no map.",) or dialog.result is not None,
                    timeout=120000)
    assert dialog.result is None and dialog.status.text() == "Stopped: no map."
    dialog.close()
    again = window.show_map()  # the files read before the stop are kept: this time it runs to the end
    qtbot.waitUntil(lambda: again.result is not None, timeout=180000)
    assert not again.cancel.isVisible() and not again.bar.isVisible()
