"""The main window: a step list on the left, one page per step, menus, settings, clean shutdown."""

from __future__ import annotations

import time
from pathlib import Path

from PySide6.QtCore import QSettings, Qt
from PySide6.QtGui import QAction, QCloseEvent, QKeySequence
from PySide6.QtWidgets import (
    QHBoxLayout,
    QListWidget,
    QListWidgetItem,
    QMainWindow,
    QMessageBox,
    QStackedWidget,
    QWidget,
)

from tlstudio.core.paths import runs_home
from tlstudio.gui.pages.data_page import DataPage, demo_folder
from tlstudio.gui.pages.evaluate_page import EvaluatePage
from tlstudio.gui.pages.model_page import ModelPage
from tlstudio.gui.pages.train_page import TrainPage
from tlstudio.gui.pages.try_page import TryPage
from tlstudio.gui.state import StudioState
from tlstudio.gui.tasks import Task

STEPS = ("1  Data", "2  Model", "3  Train", "4  Evaluate", "5  Try & export")
MAX_RECENT = 8


def settings() -> QSettings:
    return QSettings("tlstudio", "Transfer Learning Studio")


class MainWindow(QMainWindow):
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
        for page in (self.data_page, self.model_page, self.train_page, self.evaluate_page, self.try_page):
            self.stack.addWidget(page)
            if hasattr(page, "error"):
                page.error.connect(self.show_error)
        self.steps.currentRowChanged.connect(self.stack.setCurrentIndex)
        self.model_page.start_requested.connect(self.start_training)
        self.train_page.start_button.clicked.connect(self.start_training)
        self.train_page.finished.connect(self._training_finished)
        self.data_page.folder_opened.connect(self._remember_folder)
        self.state.data_changed.connect(lambda _s: self._update_steps())
        self.state.run_changed.connect(lambda _r: self._update_steps())
        self.state.training_changed.connect(lambda _t: self._update_steps())

        central = QWidget()
        layout = QHBoxLayout(central)
        layout.setContentsMargins(6, 6, 6, 6)
        layout.addWidget(self.steps)
        layout.addWidget(self.stack, 1)
        self.setCentralWidget(central)
        self._build_menus()
        self.statusBar().showMessage("Welcome. Choose a folder, or try the demo data.")
        self._update_steps()
        self.steps.setCurrentRow(0)
        self.ask_before_closing = self._ask_before_closing  # replaced in tests
        self.train_page.plots.apply_theme(self.dark_action.isChecked())
        geometry = settings().value("window/geometry")
        if geometry is not None:
            self.restoreGeometry(geometry)
        else:
            self.resize(1180, 780)

    # -- menus, recent folders ------------------------------------------------------------------------
    def _build_menus(self) -> None:
        file_menu = self.menuBar().addMenu("&File")
        open_action = QAction("&Open data folder…", self, shortcut=QKeySequence.StandardKey.Open)
        open_action.triggered.connect(lambda: (self.steps.setCurrentRow(0), self.data_page._choose()))
        file_menu.addAction(open_action)
        demo_action = QAction("Open the &demo data", self)
        demo_action.triggered.connect(lambda: (self.steps.setCurrentRow(0), self.data_page.open_folder(demo_folder())))
        file_menu.addAction(demo_action)
        self.recent_menu = file_menu.addMenu("Open &recent")
        self._fill_recent()
        file_menu.addSeparator()
        quit_action = QAction("&Quit", self, shortcut=QKeySequence.StandardKey.Quit)
        quit_action.triggered.connect(self.close)
        file_menu.addAction(quit_action)
        view_menu = self.menuBar().addMenu("&View")
        self.dark_action = QAction("&Dark mode", self, checkable=True)
        self.dark_action.setChecked(settings().value("view/dark", False, type=bool))
        self.dark_action.toggled.connect(self._toggle_dark)
        view_menu.addAction(self.dark_action)

    def _toggle_dark(self, dark: bool) -> None:
        from PySide6.QtWidgets import QApplication

        from tlstudio.gui.style import apply_style

        settings().setValue("view/dark", dark)
        apply_style(QApplication.instance(), dark)
        self.train_page.plots.apply_theme(dark)

    def recent_folders(self) -> list[str]:
        value = settings().value("recent/folders", [])
        return [value] if isinstance(value, str) else list(value or [])

    def _remember_folder(self, folder: str) -> None:
        recent = [folder] + [f for f in self.recent_folders() if f != folder]
        settings().setValue("recent/folders", recent[:MAX_RECENT])
        self._fill_recent()

    def _fill_recent(self) -> None:
        self.recent_menu.clear()
        folders = self.recent_folders()
        for folder in folders:
            action = QAction(folder, self)
            action.triggered.connect(lambda _c=False, f=folder: (self.steps.setCurrentRow(0),
                                                                 self.data_page.open_folder(Path(f))))
            self.recent_menu.addAction(action)
        self.recent_menu.setEnabled(bool(folders))

    # -- flow -----------------------------------------------------------------------------------------
    def _update_steps(self) -> None:
        has_data = self.state.spec is not None
        has_run = self.state.run_dir is not None
        enabled = [True, has_data, has_data, has_run, has_run]
        for row, on in enumerate(enabled):
            item = self.steps.item(row)
            flags = item.flags()
            item.setFlags(flags | Qt.ItemFlag.ItemIsEnabled if on else flags & ~Qt.ItemFlag.ItemIsEnabled)
        self.model_page.start.setEnabled(has_data and not self.state.training)

    def start_training(self) -> None:
        if self.state.spec is None:
            self.show_error("Choose a data folder first.", "Use the Data step.")
            return
        if self.state.training:
            return
        self.model_page.collect()
        run_path = runs_home() / f"{time.strftime('%Y%m%d-%H%M%S')}-{self.state.config.backbone}"
        suffix = 1
        while run_path.exists():
            suffix += 1
            run_path = run_path.with_name(f"{run_path.name.split('~')[0]}~{suffix}")
        self.steps.setCurrentRow(2)
        self.train_page.start(run_path)
        self.statusBar().showMessage(f"Training… the run is saved in {run_path}")

    def _training_finished(self, metrics) -> None:
        if metrics:
            self.statusBar().showMessage(f"Done: validation accuracy {metrics['val_accuracy']:.1%}. "
                                         "See the Evaluate step.")

    def show_error(self, message: str, hint: str = "") -> None:
        self.statusBar().showMessage(message)
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

    def closeEvent(self, event: QCloseEvent) -> None:
        if self.state.training and not self.ask_before_closing():
            event.ignore()
            return
        self.train_page.shutdown()
        Task.wait_all(10000)
        settings().setValue("window/geometry", self.saveGeometry())
        event.accept()
