"""The whole studio driven as a user would: folder -> model and depth -> train -> evaluate -> try."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest
from PySide6.QtCore import QElapsedTimer, QMimeData, QPointF, Qt, QTimer, QUrl
from PySide6.QtGui import QDropEvent

from tests.gui.helpers import open_folder, pick_backbone, train

pytestmark = pytest.mark.gui


def test_folder_to_curves_to_matrix_to_prediction(window, qtbot, shapes_dir: Path, record_property) -> None:
    open_folder(window, qtbot, shapes_dir)
    assert window.data_page.table.rowCount() == 3
    assert "3 classes, 72 images" in window.data_page.summary.text()
    window.data_page.class_pick.setCurrentIndex(2)
    qtbot.waitUntil(lambda: len(window.data_page.grid.thumbs.paths) == 24, timeout=5000)

    page = window.model_page
    pick_backbone(window, "mobilenet_v2")
    page.depth.setValue(1)
    assert "top 1 of 19 blocks" in page.depth_label.text()
    assert "features.18" in page.block_list.text()
    page.epochs.setValue(2)

    gaps: list[int] = []
    clock = QElapsedTimer()
    ticker = QTimer()
    ticker.setInterval(10)

    def tick() -> None:
        if clock.isValid():
            gaps.append(clock.restart())
        else:
            clock.start()

    ticker.timeout.connect(tick)
    ticker.start()
    with qtbot.waitSignal(window.train_page.finished, timeout=300000) as finished:
        qtbot.mouseClick(page.start, Qt.MouseButton.LeftButton)
    ticker.stop()
    metrics = finished.args[0]
    assert metrics["epochs"] == 2 and metrics["unfreeze_blocks"] == 1
    qtbot.waitUntil(lambda: not window.train_page.session.is_running(), timeout=10000)
    points = window.train_page.plots.points()
    assert points["epochs"] == 2 and points["batches"] >= 2
    largest = max(gaps)
    record_property("ui_largest_gap_ms", largest)
    print(f"\nUI timer (10 ms) during training: {len(gaps)} ticks, largest gap {largest} ms")
    assert largest < 1000, f"the window froze for {largest} ms"
    assert window.train_page.plots.redraws <= 20 * (sum(gaps) / 1000) + 5  # throttled to ~20 redraws/s

    window.steps.setCurrentRow(3)
    evaluate = window.evaluate_page
    assert evaluate.matrix.rowCount() == 3 and evaluate.matrix.columnCount() == 3
    assert "Validation accuracy" in evaluate.headline.text()
    evaluate.matrix.cellClicked.emit(0, 0)
    assert len(evaluate.shown_paths()) == int(evaluate.matrix.item(0, 0).text().split()[0])
    assert "calibration error" in evaluate.reliability.caption.text()
    assert sum(row["count"] for row in evaluate.reliability.bins) == metrics["sizes"]["val"]

    window.steps.setCurrentRow(4)
    dropped = shapes_dir / "triangles" / "triangles_0003.jpg"
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(dropped))])
    event = QDropEvent(QPointF(5, 5), Qt.DropAction.CopyAction, mime, Qt.MouseButton.NoButton,
                       Qt.KeyboardModifier.NoModifier)
    with qtbot.waitSignal(window.try_page.predicted, timeout=60000) as predicted:
        window.try_page.dropEvent(event)
    (prediction,) = predicted.args[0]
    assert prediction.path == str(dropped) and len(prediction.top) == 3
    assert abs(sum(p for _, p in prediction.top) - 1.0) < 1e-3
    try_page = window.try_page
    try_page.threshold.setValue(0)
    (card,) = try_page.shown_cards()
    print(f"dropped file: top {prediction.top[0]}, novelty {prediction.novelty}")
    assert prediction.novelty is not None
    assert card.verdict == ("unknown" if prediction.unfamiliar else prediction.top[0][0])
    try_page.threshold.setValue(99)  # cards are redrawn at once with the new threshold
    (card,) = try_page.shown_cards()
    assert card.verdict == ("unknown" if prediction.top[0][1] < 0.99 or prediction.unfamiliar
                            else prediction.top[0][0])
    with qtbot.waitSignal(try_page.explained, timeout=60000) as explained:
        try_page.heat.setChecked(True)  # heat maps replace the thumbnails, computed in the background
    assert explained.args[0] == 1 and try_page.shown_cards()[0].heat_shown
    assert evaluate.explain(str(dropped)) is not None  # the mistakes' menu: "What did the model look at?"
    qtbot.waitUntil(lambda: getattr(evaluate, "explanation_dialog", None) is not None, timeout=60000)
    assert evaluate.explanation_dialog.isVisible()
    evaluate.explanation_dialog.close()
    with qtbot.waitSignal(window.try_page.exported, timeout=120000) as exported:
        window.try_page.export_to(Path(window.state.run_dir).parent / "exports", "torchscript")
    folder = Path(exported.args[0]).parent
    assert (folder / "model.ts").is_file() and (folder / "model.json").is_file() and (folder / "predict.py").is_file()


def test_closing_during_training_asks_then_stops_cleanly(window, qtbot, shapes_dir: Path) -> None:
    open_folder(window, qtbot, shapes_dir)
    pick_backbone(window, "mobilenet_v2")
    window.model_page.depth.setValue(2)
    window.model_page.epochs.setValue(50)
    with qtbot.waitSignal(window.train_page.epoch_ended, timeout=300000):
        window.start_training()
    window.ask_before_closing = lambda: False
    assert not window.close()  # the user said no: still open, still training
    assert window.state.training
    window.ask_before_closing = lambda: True
    started = time.perf_counter()
    with qtbot.waitSignal(window.closed_for_good, timeout=120000):
        window.close()  # the window hides at once; it closes for good when the run has ended
        assert not window.isVisible() and time.perf_counter() - started < 2
    assert not window.train_page.session.is_running()
    metrics = Path(window.state.run_dir or window.train_page.run_path) / "metrics.json"
    qtbot.waitUntil(metrics.is_file, timeout=10000)


def test_recent_folders_and_geometry_persist(window, qtbot, shapes_dir: Path) -> None:
    open_folder(window, qtbot, shapes_dir)
    assert window.recent_folders()[0] == str(shapes_dir)
    window.resize(720, 560)  # fits the offscreen 800x600 screen and the window's minimum size
    expected = (window.size().width(), window.size().height())
    assert expected != (1180, 780)  # not the default size
    window.close()
    from tlstudio.gui.main_window import MainWindow

    again = MainWindow()
    qtbot.addWidget(again)
    assert again.recent_folders()[0] == str(shapes_dir)
    assert (again.size().width(), again.size().height()) == expected
    again.close()


def test_the_window_never_imports_torch_on_the_gui_thread(tmp_path: Path) -> None:
    """Torch loads in background threads, so the window appears at once."""
    code = f"""
import os, sys, threading, time
os.environ['QT_QPA_PLATFORM'] = 'offscreen'
os.environ['TLSTUDIO_HOME'] = {str(tmp_path)!r}
from PySide6.QtCore import QSettings
QSettings.setDefaultFormat(QSettings.Format.IniFormat)
QSettings.setPath(QSettings.Format.IniFormat, QSettings.Scope.UserScope, {str(tmp_path / "settings")!r})
import builtins
real_import = builtins.__import__
seen = []
def spy(name, *args, **kwargs):
    if name == 'torch' and 'torch' not in sys.modules:
        seen.append(threading.current_thread() is threading.main_thread())
    return real_import(name, *args, **kwargs)
builtins.__import__ = spy
started = time.perf_counter()
from tlstudio.gui.app import create_window
app, window = create_window()
window.show()
app.processEvents()
shown = time.perf_counter() - started
print('torch_loaded_at_show', 'torch' in sys.modules and sys.modules['torch'].__dict__.get('__version__') is not None)
print('shown_s', round(shown, 2))
deadline = time.time() + 120
while not window.model_page.rows and time.time() < deadline:
    app.processEvents(); time.sleep(0.02)
print('main_thread_imports', seen.count(True))
window.close()
"""
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    lines = dict(line.split(" ", 1) for line in result.stdout.strip().splitlines())
    assert lines["main_thread_imports"] == "0", result.stdout
    print(result.stdout)


def test_evaluating_on_a_new_folder_shows_old_and_new_accuracy(window, qtbot, shapes_dir: Path,
                                                              tmp_path: Path) -> None:
    import shutil

    train(window, qtbot, shapes_dir, depth=0, epochs=2)
    drift = tmp_path / "drift"
    shutil.copytree(shapes_dir, drift)
    shutil.copytree(shapes_dir / "circles", drift / "ovals")
    page = window.evaluate_page
    page.tta.setChecked(True)
    with qtbot.waitSignal(page.evaluated, timeout=120000) as done:
        page.evaluate(drift)
    result = done.args[0]
    assert result["plain"]["files"] == 72 and result["tta"] is not None
    assert "at training" in page.headline.text() and "test-time augmentation" in page.headline.text()
    assert "ovals" in page.headline.text()


def test_tests_never_touch_the_users_real_settings(window, tmp_path: Path) -> None:
    from tlstudio.gui.settings import settings

    window.recent_data.remember("/some/folder")
    assert settings().fileName().startswith(str(tmp_path / "settings"))
    assert window.recent_folders()[0] == "/some/folder"
