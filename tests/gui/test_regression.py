"""A regression folder (labels.csv of numbers) walked through the window: Data shows value ranges, Train draws
the MAE, Evaluate the predicted-against-true scatter whose dots open their file, Try shows the number."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.core.test_regression import brightness_folder
from tests.gui.helpers import train

pytestmark = pytest.mark.gui


def test_a_regression_run_in_the_window(window, qtbot, tmp_path: Path) -> None:
    folder = brightness_folder(tmp_path / "bright", files=40)
    window.data_page.open_folder(folder)
    qtbot.waitUntil(lambda: window.state.spec is not None, timeout=30000)
    page = window.data_page
    assert window.state.spec.task == "regression"
    assert "regression on “brightness”" in page.summary.text()
    assert page.table.rowCount() == 10 and "–" in page.table.item(0, 0).text()  # value ranges, not classes
    counts = sum(int(page.table.item(r, 1).text()) for r in range(page.table.rowCount()))
    assert counts == 40
    window.model_page.epochs.setValue(2)
    with qtbot.waitSignal(window.train_page.finished, timeout=300000) as finished:
        window.start_training()
    metrics = finished.args[0]
    assert metrics["task"] == "regression"
    plots = window.train_page.plots
    assert plots.score == "mae" and "error" in plots.acc_plot.plotItem.titleLabel.text
    assert "MAE" in window.train_page.status.text()
    evaluate = window.evaluate_page
    qtbot.waitUntil(lambda: evaluate.regression, timeout=10000)
    assert evaluate.left.currentIndex() == 1 and "MAE" in evaluate.headline.text()
    assert len(evaluate.scatter.paths) == metrics["sizes"]["val"]
    assert evaluate.cell_title.text().startswith("<b>Largest errors")
    chosen = evaluate.scatter.paths[0]
    evaluate.scatter.point_chosen.emit(chosen)
    assert evaluate.shown_paths() == [chosen]
    with qtbot.waitSignal(window.try_page.predicted, timeout=60000) as predicted:
        window.try_page.predict([chosen])
    result = predicted.args[0][0]
    assert result.value is not None and not result.top
    from PySide6.QtWidgets import QLabel

    from tlstudio.gui.pages.try_page import PredictionCard

    cards = window.try_page.findChildren(PredictionCard)
    assert len(cards) == 1
    assert f"brightness: {result.value:.4g}" in " ".join(label.text() for label in cards[0].findChildren(QLabel))


def test_continue_training_on_new_data_draws_the_forgetting_meter(window, qtbot, tmp_path: Path) -> None:
    from tlstudio.demo import make_image_folder

    old = make_image_folder(tmp_path / "old", classes=("circles", "squares"), per_class=12, size=(96, 72), seed=1)
    new = make_image_folder(tmp_path / "new", classes=("squares", "triangles"), per_class=12, size=(96, 72),
                            seed=5)
    train(window, qtbot, old, epochs=2)
    first = window.state.run_dir
    assert window.train_page.more_data_button.isEnabled()
    with qtbot.waitSignal(window.train_page.finished, timeout=300000) as finished:
        window.continue_on_new_data(new)
    metrics = finished.args[0]
    forgetting = metrics["forgetting"]
    assert forgetting["from"] == str(first) and forgetting["added_classes"] == ["triangles"]
    assert metrics["classes"] == ["circles", "squares", "triangles"]
    plots = window.train_page.plots
    assert len(plots.old_val.getData()[0]) == 2  # one point per epoch on the accuracy plot
    assert "Forgetting meter" in window.train_page.status.text()
    assert window.state.run_dir != first and not window.state.config.start_from  # the next run starts fresh
