"""The studio's advice in words: the accuracy interval, data warnings, offline errors in plain words."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

pytestmark = pytest.mark.gui


def test_the_wilson_interval_is_honest_for_small_sets() -> None:
    import torch

    from tlstudio.core.inference.metrics import report, wilson_interval

    low, high = wilson_interval(9, 10)
    assert round(low, 3) == 0.596 and round(high, 3) == 0.982  # the textbook values
    assert wilson_interval(10, 10)[1] == 1.0 and wilson_interval(0, 0) == (0.0, 1.0)
    probabilities = torch.tensor([[0.9, 0.1], [0.2, 0.8], [0.6, 0.4]])
    result = report(probabilities, torch.tensor([0, 1, 1]), ["a", "b"])
    assert result["accuracy"] == round(2 / 3, 4)
    interval = result["accuracy_interval"]
    assert interval["level"] == 0.95 and interval["low"] < result["accuracy"] < interval["high"]
    from tlstudio.gui import advice

    assert all(advice.wilson_interval(k, n) == wilson_interval(k, n) for n in (1, 7, 30) for k in range(n + 1))


def test_data_advice_warns_about_tiny_classes_small_validation_and_imbalance(shapes_dir: Path) -> None:
    from tlstudio.core.data.scan import scan
    from tlstudio.gui.advice import data_advice, grouping_line

    spec = scan(shapes_dir)
    text = " ".join(data_advice(spec))
    assert "validation file" in text and "95% interval" in text  # 72 files: validation is small
    assert "Tiny" not in text and "Imbalanced" not in text
    circles = [s for s in spec.train if s.label == 0][:3]
    lopsided = dataclasses.replace(spec, train=circles + [s for s in spec.train if s.label != 0],
                                   val=[s for s in spec.val if s.label != 0])
    text = " ".join(data_advice(lopsided))
    assert "Tiny class(es): circles (3)" in text and "Imbalanced classes" in text
    assert "No validation files for: circles" in text
    line = grouping_line(spec)
    assert line.startswith("Split: drawn by the studio") and "group(s) to train" in line


def test_offline_errors_are_said_in_plain_words() -> None:
    from tlstudio.gui.messages import plain_error

    message, hint = plain_error("<urlopen error [Errno -2] Name or service not known>", "tlstudio weights fetch")
    assert "cannot reach the internet" in message and "Errno" not in message
    assert "Import a weights file" in hint
    assert plain_error("Disk full.", "Free space.") == ("Disk full.", "Free space.")


def test_the_model_page_finds_a_learning_rate_and_uses_it(window, qtbot, shapes_dir) -> None:
    from tests.gui.helpers import open_folder, pick_backbone

    open_folder(window, qtbot, shapes_dir)
    pick_backbone(window, "mobilenet_v2")
    window.model_page.depth.setValue(0)
    assert window.model_page.find_learning_rate() is not None
    qtbot.waitUntil(lambda: getattr(window.model_page, "lr_dialog", None) is not None, timeout=120000)
    dialog = window.model_page.lr_dialog
    assert len(dialog.test.losses) > 10 and f"{dialog.test.suggestion:.2g}" in dialog.use.text()
    dialog.use.click()
    assert window.model_page.lr.value() == pytest.approx(dialog.test.suggestion, rel=0.01)
    # the button comes back when the task's done signal reaches the GUI thread, which can trail the dialog
    qtbot.waitUntil(window.model_page.lr_find.isEnabled, timeout=30000)


def test_recommend_shows_progress_can_be_cancelled_and_never_claims_a_depth_the_user_changed(
        window, qtbot, shapes_dir) -> None:
    """A user waited 7.5 min on "Probing..." with no progress or cancel; then "Recommended and set" stayed
    after they moved the depth."""
    from PySide6.QtCore import Qt

    from tests.gui.helpers import set_up_tiny

    set_up_tiny(window, qtbot, shapes_dir)
    page = window.model_page
    depth_before = page.depth.value()
    qtbot.mouseClick(page.recommend_button, Qt.MouseButton.LeftButton)
    assert page.recommend_button.text() == "Cancel"
    qtbot.waitUntil(lambda: "%" in page.advice.text() and "Press Cancel" in page.advice.text(), timeout=60000)
    with qtbot.waitSignal(page.recommend_task.done, timeout=60000):
        qtbot.mouseClick(page.recommend_button, Qt.MouseButton.LeftButton)
    assert page.advice.text() == "Stopped: no advice, and nothing was changed."
    assert page.depth.value() == depth_before and page.recommend_button.text() == "Recommend"

    qtbot.mouseClick(page.recommend_button, Qt.MouseButton.LeftButton)
    with qtbot.waitSignal(page.recommend_task.done, timeout=300000):
        pass
    assert page.advice.text().startswith("<b>Recommended and set:</b>")
    page.depth.setFocus()  # the user moves the slider with the keyboard
    qtbot.keyClick(page.depth, Qt.Key.Key_End if page.depth.value() == 0 else Qt.Key.Key_Home)
    assert "you chose another depth" in page.advice.text() and "and set" not in page.advice.text()
