"""The main window: a step list on the left, one page per step, menus, settings, clean shutdown.

Closing never stalls: training and background tasks are told to stop, the window hides at once
("Stopping…"), and the process ends when the last thread has finished (the best weights are kept).
"""

from __future__ import annotations

import time
from pathlib import Path

from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtGui import QCloseEvent
from PySide6.QtWidgets import (
    QHBoxLayout,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QMainWindow,
    QMessageBox,
    QPushButton,
    QStackedWidget,
    QVBoxLayout,
    QWidget,
)

from tlstudio.core.store.paths import runs_home
from tlstudio.gui.continuation import Continuation
from tlstudio.gui.menus import build_menus
from tlstudio.gui.messages import HELP, plain_error, score_text
from tlstudio.gui.pages.compare_page import ComparePage
from tlstudio.gui.pages.data_page import DataPage, demo_folder
from tlstudio.gui.pages.evaluate_page import EvaluatePage
from tlstudio.gui.pages.model_page import ModelPage
from tlstudio.gui.pages.train_page import TrainPage
from tlstudio.gui.pages.try_page import TryPage
from tlstudio.gui.project_files import ProjectFiles
from tlstudio.gui.scratch_twin import ScratchTwin
from tlstudio.gui.settings import settings
from tlstudio.gui.state import StudioState, is_untitled
from tlstudio.gui.tasks import Task
from tlstudio.gui.widgets.page_area import PageArea

STEPS = ("1  Data", "2  Model", "3  Train", "4  Evaluate", "5  Try & export", "6  Compare")
MINIMUM_SIZE = (960, 600)  # a small laptop's screen; below it, pages scroll down (never sideways: the layout audit)
WELCOME = "Welcome. Choose a folder, or try the demo data."
NEWS_MS = 30000  # news (an error, a save, a changed folder) leaves the status bar by itself: never a stale state
CLOSE_GIVE_UP_MS = 60000  # a thread stuck in something that cannot be interrupted: stop waiting for it


class MainWindow(ProjectFiles, ScratchTwin, QMainWindow):
    closed_for_good = Signal()  # every thread has ended and the window has really closed

    def __init__(self) -> None:
        super().__init__()
        self.setWindowTitle("Transfer Learning Studio")
        self.state = StudioState()
        self.steps = QListWidget()
        self.steps.setObjectName("steps")
        self.steps.setFixedWidth(170)
        for label in STEPS:
            self.steps.addItem(QListWidgetItem(label))
        self.stack = QStackedWidget()
        self.data_page = DataPage(self.state)
        self.model_page = ModelPage(self.state)
        self.train_page = TrainPage(self.state)
        self.evaluate_page = EvaluatePage(self.state)
        self.try_page = TryPage(self.state)
        self.compare_page = ComparePage(self.state)
        self.compare_page.transfer_check_requested.connect(self.check_transfer)
        self.compare_page.use_run_requested.connect(self.use_run)
        for page in (self.data_page, self.model_page, self.train_page, self.evaluate_page, self.try_page,
                     self.compare_page):
            self.stack.addWidget(PageArea(page))  # scrolls down at a small size, never squeezes
            if hasattr(page, "error"):
                page.error.connect(self.show_error)
        self.steps.currentRowChanged.connect(self._step_changed)
        self.model_page.start_requested.connect(lambda: self.start_training())
        self.train_page.start_requested.connect(lambda: self.start_training())
        self.train_page.finished.connect(self._training_finished)
        self.train_page.paused_changed.connect(lambda paused: self.statusBar().showMessage(
            "Paused: the run waits after its current batch; Resume on the Train page goes on." if paused
            else getattr(self, "_training_news", "Training…")))
        self.train_page.continue_on_new_data.connect(lambda: self.continue_on_new_data())
        self.data_page.map_requested.connect(self.show_map)
        self.evaluate_page.map_requested.connect(self.show_map)
        self.evaluate_page.retrain_requested.connect(lambda: self.start_training())
        self.continuation = Continuation(self.data_page, self)
        self.continuation.ready.connect(lambda run_dir: self.start_training(start_from=run_dir))
        self.data_page.folder_opened.connect(lambda folder: self.recent_data.remember(folder))
        self.data_page.news.connect(lambda text: self.statusBar().showMessage(text, NEWS_MS))
        self.data_page.folder_chosen.connect(lambda folder: self.open_data_folder(folder))
        self.state.data_changed.connect(lambda _s: self._update_steps())
        self.state.data_changed.connect(self._greeting_done)
        self.state.data_switched.connect(self._data_switched)
        self.state.run_changed.connect(lambda _r: self._update_steps())
        self.state.training_changed.connect(lambda _t: self._update_steps())
        self.state.runs_changed.connect(self._update_steps)
        self.state.project_changed.connect(self._project_changed)
        self.model_page.readiness_changed.connect(self._update_steps)

        self.next_button = QPushButton("Next ▸")
        self.next_button.setToolTip("Go to the next step (Ctrl+1 … Ctrl+6 jump to a step; F1 explains this page).")
        self.next_button.clicked.connect(lambda: self.next_step())
        self.next_reason = QLabel("")
        self.next_reason.setObjectName("hint")
        right = QWidget()
        right_layout = QVBoxLayout(right)
        right_layout.setContentsMargins(0, 0, 0, 0)
        right_layout.addWidget(self.stack, 1)
        bottom = QHBoxLayout()
        bottom.addStretch(1)
        bottom.addWidget(self.next_reason)
        bottom.addWidget(self.next_button)
        right_layout.addLayout(bottom)
        central = QWidget()
        layout = QHBoxLayout(central)
        layout.setContentsMargins(6, 6, 6, 6)
        layout.addWidget(self.steps)
        layout.addWidget(right, 1)
        self.setCentralWidget(central)
        build_menus(self, STEPS)
        self.statusBar().showMessage(WELCOME, 20000)
        self._update_steps()
        self.steps.setCurrentRow(0)
        self.ask_before_closing = self._ask_before_closing  # replaced in tests
        self.ask_save_changes = self._ask_save_changes  # replaced in tests
        self._closing = self._closed = False
        self._close_timer: QTimer | None = None  # while hidden, waiting for the last thread to end
        self._close_started = 0.0
        self._compare_after: list[str] | None = None  # a run and its from-scratch twin, compared when done
        self.apply_plot_theme(self.dark_action.isChecked())
        self.setMinimumSize(*MINIMUM_SIZE)
        geometry = settings().value("window/geometry")
        if geometry is not None:
            self.restoreGeometry(geometry)
        else:
            self.resize(1180, 780)

    # -- menus' actions ----------------------------------------------------------------------------------
    def choose_data_folder(self) -> None:
        self.steps.setCurrentRow(0)
        self.data_page.choose_folder()  # the page asks for a folder and sends it back (folder_chosen)

    def open_demo_data(self) -> None:
        self.open_data_folder(str(demo_folder()))

    def set_dark(self, dark: bool) -> None:
        from PySide6.QtWidgets import QApplication

        from tlstudio.gui.style import apply_style

        settings().setValue("view/dark", dark)
        apply_style(QApplication.instance(), dark)
        self.apply_plot_theme(dark)

    def apply_plot_theme(self, dark: bool) -> None:
        for page in (self.data_page, self.train_page, self.evaluate_page, self.compare_page):
            page.apply_theme(dark)

    def recent_folders(self) -> list[str]:
        return self.recent_data.items()

    # -- steps, help ----------------------------------------------------------------------------------
    def go_to_step(self, row: int) -> bool:
        item = self.steps.item(row)
        if item is None or not item.flags() & Qt.ItemFlag.ItemIsEnabled:
            self.statusBar().showMessage(f"{STEPS[row].split('  ')[1]} is not available yet: "
                                         + self._why_not(row))
            return False
        self.steps.setCurrentRow(row)
        return True

    def next_step(self) -> bool:
        return self.go_to_step(self.steps.currentRow() + 1)

    def _why_not(self, row: int) -> str:
        if row in (1, 2):
            return "choose a data folder first."
        if row in (3, 4):
            return "train a model, or open a run (File > Open run…)."
        if row == 5:
            return "no runs in this project yet."
        return ""

    def _step_changed(self, row: int) -> None:
        self.stack.setCurrentIndex(row)
        self._update_next()

    def _update_next(self) -> None:
        row = self.steps.currentRow()
        if row >= len(STEPS) - 1:
            self.next_button.setVisible(False)
            self.next_reason.setText("")
            return
        self.next_button.setVisible(True)
        self.next_button.setText(f"Next: {STEPS[row + 1].split('  ')[1].replace('&', '&&')} ▸")
        enabled = bool(self.steps.item(row + 1).flags() & Qt.ItemFlag.ItemIsEnabled)
        self.next_button.setEnabled(enabled)
        waiting = not enabled and self.state.training and row + 1 in (3, 4)
        self.next_reason.setText("" if enabled else "Available when this run has finished its first epoch."
                                 if waiting else self._why_not(row + 1).capitalize())

    def show_help(self) -> QMessageBox:
        box = QMessageBox(QMessageBox.Icon.Information, "Help", HELP.get(self.steps.currentRow(), ""), parent=self)
        box.setModal(False)
        box.show()
        self.help_box = box
        return box

    # -- runs -----------------------------------------------------------------------------------------
    def open_run_dialog(self) -> None:
        from PySide6.QtWidgets import QFileDialog

        folder = QFileDialog.getExistingDirectory(self, "Open a run folder", str(runs_home()))
        if folder:
            self.open_run(Path(folder))

    def open_run(self, run_dir: Path) -> bool:
        """Any run folder: added to the project and made the active model."""
        from tlstudio.core.store.runs import RunDir

        run_dir = Path(run_dir)
        if not RunDir(run_dir).has_results:
            self.show_error(f"{run_dir} is not a finished run folder (it has no metrics.json).",
                            "Choose a folder the studio or `tlstudio train` made; a stopped run can be continued "
                            "on the Train page.")
            return False
        self.state.project.add_run(run_dir)
        self.state.touch()
        self.state.runs_changed.emit()
        self.use_run(str(run_dir))
        return True

    def use_run(self, run_path: str) -> None:
        """Make a run the active model for Evaluate and Try & export."""
        from tlstudio.core.store.runs import RunDir

        run_dir = Path(run_path)
        if not RunDir(run_dir).has_results:
            self.show_error(f"{run_dir.name} has no results yet.", "Choose a run that finished or was stopped.")
            return
        self.state.set_run(run_dir)
        self.state.autosave()
        self.statusBar().showMessage(f"Active model: {run_dir.name}. Evaluate and Try & export use it now.", NEWS_MS)

    # -- flow -----------------------------------------------------------------------------------------
    def _greeting_done(self, spec) -> None:
        """Data is open: the welcome's "choose a folder" is stale at once."""
        if spec is not None and self.statusBar().currentMessage() == WELCOME:
            self.statusBar().clearMessage()

    def _data_switched(self) -> None:
        """Another folder: pages tied to the old data reset (the active run stays only if it was trained on it), and
        so does the status bar's news of the old folder's runs."""
        self.statusBar().clearMessage()
        self.train_page.clear()
        if self.state.run_dir is None:
            self.evaluate_page.clear()
            self.try_page.clear()
        else:
            self.train_page.show_run(self.state.run_dir)

    def _update_steps(self) -> None:
        has_data = self.state.spec is not None
        has_run = self.state.run_dir is not None
        enabled = [True, has_data, has_data, has_run, has_run, bool(self.state.project.runs)]
        for row, on in enumerate(enabled):
            item = self.steps.item(row)
            flags = item.flags()
            item.setFlags(flags | Qt.ItemFlag.ItemIsEnabled if on else flags & ~Qt.ItemFlag.ItemIsEnabled)
        ready, reason = self.model_page.readiness()
        can_train = has_data and not self.state.training and ready
        self.model_page.set_can_start(can_train, reason if has_data and not self.state.training else "")
        self.train_page.set_can_start(can_train, reason if not ready else "")
        if hasattr(self, "next_button"):
            self._update_next()

    def show_map(self):
        """The embedding map of the active run (widgets/map_dialog.py); its "Retrain" trains again here."""
        if self.state.run_dir is None:
            self.show_error("Train a model first: the map shows what its network sees.", "")
            return None
        from tlstudio.gui.widgets.map_dialog import MapDialog

        dialog = MapDialog(self.state, self.state.run_dir, self)
        dialog.retrain_requested.connect(lambda: self.start_training())
        dialog.view.apply_theme(bool(settings().value("view/dark", False, type=bool)))
        dialog.show()
        self.map_dialog = dialog
        return dialog

    def continue_on_new_data(self, folder: str | Path | None = None) -> None:
        """Open a folder of new data, then train the active model further on it (--from in the CLI)."""
        source = self.state.run_dir
        if source is None:
            self.show_error("Choose the model to continue first.", "Train one, or pick one on the Compare page.")
            return
        if folder is None:
            from PySide6.QtWidgets import QFileDialog

            folder = QFileDialog.getExistingDirectory(self, "New data to continue training on", str(Path.home()))
            if not folder:
                return
        self.continuation.begin(Path(source), folder)

    def start_training(self, start_from: Path | None = None) -> None:
        """`start_from`: a run whose model keeps learning on the open data (its backbone, head and depth, a
        lower learning rate, rehearsal and the forgetting meter: core/training/continuation.py)."""
        if self.state.spec is None:
            self.show_error("Choose a data folder first.", "Use the Data step.")
            return
        if self.state.training:
            return
        ready, reason = self.model_page.readiness()
        if not ready:
            self.show_error(reason, "Press “Import a weights file…” on the Model page.")
            return
        self.model_page.collect()
        from tlstudio.core.errors import StudioError

        config = self.state.config
        try:
            config.validate()
            if start_from is not None:
                import copy

                from tlstudio.core.store.runs import RunDir
                from tlstudio.core.training.config import continuation_defaults

                old = RunDir.open(start_from).settings()
                config = continuation_defaults(copy.deepcopy(config), old, set())
                config.start_from = str(start_from)
        except StudioError as exc:
            self.show_error(exc.message, exc.hint)
            return
        except (OSError, ValueError) as exc:
            self.show_error(f"The run {Path(start_from).name} cannot be read ({exc}).", "Continue another run.")
            return
        from tlstudio.core.training.session import new_run_path

        run_path = new_run_path(config.backbone)  # the run service's naming, the command line's too
        self.state.project.settings = self.state.config.to_dict()
        self.state.touch()
        self.state.autosave()
        self.steps.setCurrentRow(2)
        self.train_page.start(run_path, config=config)
        self._training_news = f"Training… the run is saved in {run_path}" + (
            f"; it continues {Path(start_from).name}" if start_from is not None else "")
        self.statusBar().showMessage(self._training_news)

    def _training_finished(self, metrics) -> None:
        pending = self._compare_after
        if pending and metrics and metrics.get("val_accuracy") is not None:
            self._compare_after = None
            self.compare_page.select_paths([str(Path(p).resolve()) for p in pending])
            self.steps.setCurrentRow(5)
        if metrics and metrics.get("status") == "cancelled":  # says exactly what the stop kept
            self.statusBar().showMessage(
                f"Stopped after epoch {metrics['epochs']} of {metrics['epochs_planned']}: the model of epoch "
                f"{metrics['best_epoch']} ({score_text(metrics)}) and a checkpoint are kept; Continue goes on."
                if metrics.get("epochs") else "Stopped before the first epoch ended: nothing new was trained.")
        elif metrics and metrics.get("task") == "regression" and metrics.get("val_mae") is not None:
            self.statusBar().showMessage(f"Done: validation {score_text(metrics)}. See the Evaluate step.")
        elif metrics and metrics.get("val_accuracy") is not None:
            if self.train_page.comparison:
                self.statusBar().showMessage(f"From-scratch comparison done: {metrics['val_accuracy']:.1%}. The "
                                             "active model is unchanged (double-click a run to use another).")
            else:
                self.statusBar().showMessage(f"Done: validation accuracy {metrics['val_accuracy']:.1%}. "
                                             "See the Evaluate step.")

    def show_error(self, message: str, hint: str = "") -> None:
        message, hint = plain_error(message, hint)
        self.statusBar().showMessage(message, NEWS_MS)
        box = QMessageBox(QMessageBox.Icon.Warning, "Transfer Learning Studio", message, parent=self)
        if hint:
            box.setInformativeText(hint)
        box.setModal(False)
        box.show()
        self.last_error = (message, hint)

    # -- closing --------------------------------------------------------------------------------------
    def _ask_before_closing(self) -> bool:
        answer = QMessageBox.question(self, "Training is running",
                                      "A model is training. Stop it and quit? The best weights so far are kept.")
        return answer == QMessageBox.StandardButton.Yes

    def _ask_save_changes(self) -> str:
        """'save', 'discard' or 'cancel'."""
        untitled = is_untitled(self.state.project)
        text = ("This project has no name yet. Save it under a name? (It is also kept as an untitled project "
                "and reopens at the next launch.)" if untitled else "Save the changes to this project?")
        answer = QMessageBox.question(
            self, "Save the project?", text,
            QMessageBox.StandardButton.Save | QMessageBox.StandardButton.Discard | QMessageBox.StandardButton.Cancel)
        return {QMessageBox.StandardButton.Save: "save", QMessageBox.StandardButton.Discard: "discard"}.get(
            answer, "cancel")

    def _unsaved(self) -> bool:
        if not self.state.dirty:
            return False
        return bool(self.state.project.runs) if is_untitled(self.state.project) else True

    def showEvent(self, event) -> None:
        super().showEvent(event)

        QTimer.singleShot(0, self._release_torch_when_settled)

    def _release_torch_when_settled(self) -> None:
        """Torch loads in the background once the window is up and shows its project (from memory)."""
        from tlstudio.gui.tasks import Task

        recall = self.data_page.recall_task
        if recall is not None and recall.thread.isRunning():
            recall.done.connect(lambda: QTimer.singleShot(0, Task.release_torch_work))
        else:
            Task.release_torch_work()

    def closeEvent(self, event: QCloseEvent) -> None:
        if self._closed:
            event.accept()
            return
        if not self._closing:
            if self.state.training and not self.ask_before_closing():
                event.ignore()
                return
            if self._unsaved():
                answer = self.ask_save_changes()
                if answer == "cancel" or (answer == "save" and self.save_project() is None):
                    event.ignore()
                    return
            self.state.autosave()
            settings().setValue("window/geometry", self.saveGeometry())
            self._closing = True
            self._close_started = time.perf_counter()
            self.train_page.stop()
            Task.drop_all()
        if self.train_page.is_running() or Task.busy():
            # never block: say so, hide at once, and close for good when the last thread has ended
            self.statusBar().showMessage("Stopping…")
            self.train_page.show_status("Stopping… the best weights so far are kept.")
            event.ignore()
            self.hide()
            if self._close_timer is None:
                self._close_timer = QTimer(self)
                self._close_timer.setInterval(50)
                self._close_timer.timeout.connect(self._finish_closing)
                self._close_timer.start()
            return
        self._closed = True
        event.accept()
        self.closed_for_good.emit()

    def _finish_closing(self) -> None:
        waited_ms = 1000 * (time.perf_counter() - self._close_started)
        if (self.train_page.is_running() or Task.busy()) and waited_ms < CLOSE_GIVE_UP_MS:
            return
        self._close_timer.stop()
        self._closed = True
        self.close()
        self.closed_for_good.emit()
