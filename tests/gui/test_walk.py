"""A new user's walk through the whole studio, by clicks (issue 23): the demo data, Recommend and its Cancel, the
learning-rate finder, Train with Pause/Resume during embedding and during validation, Stop, Continue, Start
again, Evaluate (again, TTA, all mistakes, the map with its Cancel, leave out, relabel, retrain), Try (choose
files, heat maps, export to a new folder, open it), Compare (use a run, the scratch twin's warning), save,
quit, relaunch, and a second folder. Each step asserts what the user reads.

The operating system's file dialogs are the one thing replaced: they answer with the path a user would pick.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from PySide6.QtCore import QPointF, Qt
from PySide6.QtGui import QDesktopServices
from PySide6.QtWidgets import QFileDialog

from tests.gui.helpers import REAL_ASK_SCRATCH_BUDGET
from tests.gui.walk import Watcher, answer_question, click, go_to_step, menu_item
from tlstudio.core.training import events as ev

pytestmark = pytest.mark.gui


def _pick_backbone(window, qtbot, name: str) -> None:
    table = window.model_page.table
    (row,) = [r for r in range(table.rowCount()) if table.item(r, 0).text() == name]
    qtbot.mouseClick(table.viewport(), Qt.MouseButton.LeftButton, pos=table.visualItemRect(table.item(row, 0)).center())
    qtbot.waitUntil(lambda: getattr(window.model_page, "_current_key", ("",))[0] == name, timeout=60000)


def _type_into(qtbot, spin, text: str) -> None:
    spin.setFocus()
    spin.selectAll()
    qtbot.keyClicks(spin, text)
    qtbot.keyClick(spin, Qt.Key.Key_Tab)
    assert spin.text().startswith(text)


def _train(window, qtbot, start, on_event=None, timeout: int = 300000) -> dict:
    """Click a start button and wait for the run's end; `on_event` sees the engine's events as they come."""
    with qtbot.waitSignal(window.train_page.finished, timeout=timeout) as finished:
        click(qtbot, start)
        if on_event is not None:
            watcher = Watcher(on_event)
            window.train_page.session.worker.event.connect(watcher.on_event)
    qtbot.waitUntil(lambda: not window.train_page.is_running(), timeout=30000)
    return finished.args[0]


def _pause_then_resume_at(window, qtbot, stage: str, seen: list[str]):
    """At the first progress of `stage`: press Pause, read the status line while paused, press Resume."""
    page = window.train_page

    def act(event) -> None:
        if isinstance(event, ev.Progress) and event.stage == stage and not seen:
            click(qtbot, page.pause_button)
            assert page.pause_button.text() == "Resume"
            qtbot.wait(1500)  # paused: time passes and nothing moves
            seen.append(page.status.text())
            seen.append(window.statusBar().currentMessage())
            click(qtbot, page.pause_button)
            seen.append(page.pause_button.text())

    return act


def test_a_new_user_walks_through_the_whole_studio(window, qtbot, tmp_path: Path, shapes_dir: Path,
                                                    monkeypatch) -> None:
    from tlstudio.gui.main_window import MainWindow

    window.resize(1440, 900)
    # -- 1 Data: the demo ----------------------------------------------------------------------------------
    click(qtbot, window.data_page.demo)
    qtbot.waitUntil(lambda: "3 classes, 120 images" in window.data_page.summary.text(), timeout=60000)
    click(qtbot, window.next_button)
    assert window.steps.currentRow() == 1
    # -- 2 Model: Recommend, then Cancel; the learning-rate finder -----------------------------------------
    page = window.model_page
    qtbot.waitUntil(lambda: bool(page.rows) and hasattr(page, "_current_blocks"), timeout=120000)
    _pick_backbone(window, qtbot, "mobilenet_v2")  # its pretrained weights are on this computer
    click(qtbot, page.recommend_button)
    assert page.recommend_button.text() == "Cancel" and page.advice.text().startswith("Probing")
    click(qtbot, page.recommend_button)
    qtbot.waitUntil(lambda: page.advice.text() == "Stopped: no advice, and nothing was changed.", timeout=120000)
    qtbot.waitUntil(lambda: page.recommend_button.text() == "Recommend" and page.recommend_button.isEnabled(),
                    timeout=30000)
    assert page.depth.value() == 0
    click(qtbot, page.lr_find)
    qtbot.waitUntil(lambda: getattr(page, "lr_dialog", None) is not None and page.lr_dialog.isVisible(),
                    timeout=180000)
    suggestion = page.lr_dialog.test.suggestion
    click(qtbot, page.lr_dialog.use)
    assert abs(page.lr.value() - suggestion) <= max(1e-6, 0.02 * suggestion) or page.lr.value() in (
        page.lr.minimum(), page.lr.maximum())
    _type_into(qtbot, page.epochs, "3")
    # -- 3 Train: Pause/Resume while the files are embedded ------------------------------------------------
    seen: list[str] = []
    metrics = _train(window, qtbot, page.start, _pause_then_resume_at(window, qtbot, "embedding train", seen))
    assert window.steps.currentRow() == 2
    assert seen[0].startswith("Paused") and "ETA" not in seen[0], seen  # not a frozen ETA
    assert seen[1].startswith("Paused:"), seen  # the status bar too, not "Training…"
    assert seen[2] == "Pause" and metrics["status"] == "completed" and metrics["epochs"] == 3
    assert window.statusBar().currentMessage().startswith("Done: validation accuracy")
    # -- Model again: one block fine-tuned; Pause/Resume during validation, then Stop after epoch 1 -----------
    go_to_step(window, qtbot, "Model")
    page.depth.setFocus()
    qtbot.keyClick(page.depth, Qt.Key.Key_Right)
    assert page.depth.value() == 1 and "top 1 of" in page.depth_label.text()
    go_to_step(window, qtbot, "Train")
    train_page = window.train_page
    seen = []
    pause_during_validation = _pause_then_resume_at(window, qtbot, "validating epoch 1", seen)

    def pause_then_stop(event) -> None:
        pause_during_validation(event)
        if isinstance(event, ev.EpochEnd) and event.epoch == 1 and train_page.stop_button.isEnabled():
            click(qtbot, train_page.stop_button)

    stopped = _train(window, qtbot, train_page.start_button, pause_then_stop)
    assert seen[0].startswith("Paused") and "ETA" not in seen[0] and seen[1].startswith("Paused:"), seen
    assert stopped["status"] == "cancelled" and stopped["epochs"] >= 1
    assert window.statusBar().currentMessage().startswith(f"Stopped after epoch {stopped['epochs']} of 3")
    # -- Continue the stopped run; then Start again (a new run after a stop) --------------------------------
    continued = _train(window, qtbot, train_page.continue_button)
    assert continued["status"] == "completed" and continued["epochs"] == 3
    continued_path = train_page.run_path
    again = _train(window, qtbot, train_page.start_button)
    assert again["status"] == "completed" and train_page.run_path != continued_path  # a new run
    assert train_page.bar.text() == "Done"
    # -- 4 Evaluate: again, with TTA, every mistake, the map (cancelled, then drawn), leave out, relabel -------
    go_to_step(window, qtbot, "Evaluate")
    evaluate = window.evaluate_page
    click(qtbot, evaluate.tta)
    assert evaluate.tta.isChecked()
    with qtbot.waitSignal(evaluate.evaluated, timeout=180000) as evaluated:
        click(qtbot, evaluate.again)
    assert evaluated.args[0]["tta"] is not None and "test-time augmentation" in evaluate.headline.text()
    matrix = evaluate.matrix
    cell = matrix.visualItemRect(matrix.item(0, 0)).center()
    qtbot.mouseClick(matrix.viewport(), Qt.MouseButton.LeftButton, pos=cell)
    assert "predicted as" in evaluate.cell_title.text()
    click(qtbot, evaluate.show_all)
    assert "mistakes" in evaluate.cell_title.text()
    click(qtbot, evaluate.map_button)
    dialog = window.map_dialog
    qtbot.waitUntil(lambda: dialog.cancel.isVisible() and dialog.cancel.isEnabled(), timeout=60000)
    click(qtbot, dialog.cancel)
    qtbot.waitUntil(lambda: dialog.status.text() == "Stopped: no map." or dialog.result is not None, timeout=120000)
    dialog.close()
    click(qtbot, evaluate.map_button)
    dialog = window.map_dialog
    qtbot.waitUntil(lambda: dialog.result is not None, timeout=300000)
    point = dialog.result["points"][0]
    view = dialog.view
    spot = view.mapFromScene(view.plotItem.vb.mapViewToScene(QPointF(point["x"], point["y"])))
    qtbot.mouseClick(view.viewport(), Qt.MouseButton.LeftButton, pos=spot)
    qtbot.waitUntil(lambda: dialog.current is not None, timeout=5000)
    chosen = dialog.current
    click(qtbot, dialog.leave_out)
    assert chosen in window.state.excluded() and dialog.leave_out.text() == "Use in training again"
    click(qtbot, dialog.leave_out)
    assert chosen not in window.state.excluded()
    truth = next(p["true"] for p in dialog.result["points"] if p["path"] == chosen)
    wanted = next(name for name in dialog.result["classes"] if name != truth)
    dialog.new_label.setCurrentText(wanted)
    click(qtbot, dialog.relabel)
    assert window.state.relabelled() == {chosen: wanted} and "relabelled" in dialog.details.text()
    retrained = _train(window, qtbot, dialog.retrain)
    assert retrained["status"] == "completed"
    # -- 5 Try & export: choose files, heat maps, export to a new folder, open it ----------------------------
    go_to_step(window, qtbot, "Try & export")
    try_page = window.try_page
    files = [str(p) for p in sorted((shapes_dir / "circles").iterdir())[:2]]
    monkeypatch.setattr(QFileDialog, "getOpenFileNames", lambda *_a, **_k: (files, ""))
    with qtbot.waitSignal(try_page.predicted, timeout=120000) as predicted:
        click(qtbot, try_page.choose)
    assert [p.path for p in predicted.args[0]] == files and len(try_page.shown_cards()) == 2
    with qtbot.waitSignal(try_page.explained, timeout=120000):
        click(qtbot, try_page.heat)
    target = tmp_path / "exports" / "shapes classifier"
    monkeypatch.setattr(QFileDialog, "getSaveFileName", lambda *_a, **_k: (str(target), ""))
    with qtbot.waitSignal(try_page.exported, timeout=180000):
        click(qtbot, try_page.export_button)
    assert (target / "model.json").is_file()
    opened: list[str] = []
    monkeypatch.setattr(QDesktopServices, "openUrl", lambda url: opened.append(url.toLocalFile()) or True)
    qtbot.waitUntil(try_page.open_export.isVisible, timeout=10000)
    click(qtbot, try_page.open_export)
    assert opened and Path(opened[0]).resolve() == target.resolve()
    # -- 6 Compare: use an earlier run; the scratch twin says its time first (the user cancels) -------------
    go_to_step(window, qtbot, "Compare")
    compare = window.compare_page
    assert compare.table.rowCount() == 4  # the stopped run was continued in its own folder
    first = compare.table.visualItemRect(compare.table.item(0, 0)).center()
    qtbot.mouseClick(compare.table.viewport(), Qt.MouseButton.LeftButton, pos=first)
    click(qtbot, compare.use_button)
    assert Path(window.state.run_dir).resolve() == Path(compare.rows[0]["path"]).resolve()
    assert window.statusBar().currentMessage().startswith("Active model:")
    monkeypatch.setattr(MainWindow, "_ask_scratch_budget", REAL_ASK_SCRATCH_BUDGET)
    question: list[str] = []
    answer_question(qtbot, "Cancel", question)
    click(qtbot, compare.transfer)
    assert question and "from random weights" in question[0] and "on this computer" in question[0]
    assert "epochs, about" in question[0] and not window.train_page.is_running()
    # -- save, quit, relaunch ---------------------------------------------------------------------------------
    project = tmp_path / "walk.tlsproj"
    monkeypatch.setattr(QFileDialog, "getSaveFileName", lambda *_a, **_k: (str(project), ""))
    menu_item(window, qtbot, "File", "Save project")
    qtbot.waitUntil(project.is_file, timeout=10000)
    assert window.statusBar().currentMessage().startswith("Project saved to")
    runs = len(window.state.project.runs)
    window.close()

    from tlstudio.gui.app import create_window, start_up

    _app, relaunched = create_window()
    qtbot.addWidget(relaunched)
    relaunched.show()
    start_up(relaunched)
    qtbot.waitUntil(lambda: relaunched.data_page.table.rowCount() == 3, timeout=10000)
    assert "walk" in relaunched.windowTitle() and len(relaunched.state.project.runs) == runs == 4
    assert relaunched.compare_page.table.rowCount() == 4
    qtbot.waitUntil(lambda: "Validation accuracy" in relaunched.evaluate_page.headline.text(), timeout=60000)
    # -- a second folder: the studio asks before mixing it into this project -----------------------------------
    other = tmp_path / "other photos"
    shutil.copytree(shapes_dir, other)
    monkeypatch.setattr(QFileDialog, "getExistingDirectory", lambda *_a, **_k: str(other))
    question = []
    answer_question(qtbot, "New project", question)
    go_to_step(relaunched, qtbot, "Data")
    click(qtbot, relaunched.data_page.choose)
    assert question and "other photos is not the data folder of walk" in question[0]
    qtbot.waitUntil(lambda: "3 classes, 72 images" in relaunched.data_page.summary.text(), timeout=60000)
    assert relaunched.compare_page.table.rowCount() == 0 and "Untitled project" in relaunched.windowTitle()
    relaunched.train_page.shutdown()
