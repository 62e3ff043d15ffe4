"""The main window: a step list on the left, one page per step, menus, settings, clean shutdown."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

from PySide6.QtCore import Qt
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

from tlstudio.core.store.paths import runs_home
from tlstudio.gui.pages.compare_page import ComparePage
from tlstudio.gui.pages.data_page import DataPage, demo_folder
from tlstudio.gui.pages.evaluate_page import EvaluatePage
from tlstudio.gui.pages.model_page import ModelPage
from tlstudio.gui.pages.train_page import TrainPage
from tlstudio.gui.pages.try_page import TryPage
from tlstudio.gui.settings import settings
from tlstudio.gui.state import StudioState
from tlstudio.gui.tasks import Task

STEPS = ("1  Data", "2  Model", "3  Train", "4  Evaluate", "5  Try & export", "6  Compare")
MAX_RECENT = 8


class RecentList:
    """A most-recent-first list kept in the settings (folders, projects), mirrored in a menu."""

    def __init__(self, key: str, menu, open_item: Callable[[str], None], parent: QMainWindow) -> None:
        self.key, self.menu, self.open_item, self.parent = key, menu, open_item, parent
        self.refresh_menu()

    def items(self) -> list[str]:
        value = settings().value(self.key, [])
        return [value] if isinstance(value, str) else list(value or [])

    def remember(self, item: str) -> None:
        settings().setValue(self.key, ([item] + [i for i in self.items() if i != item])[:MAX_RECENT])
        self.refresh_menu()

    def refresh_menu(self) -> None:
        self.menu.clear()
        items = self.items()
        for item in items:
            action = QAction(item, self.parent)
            action.triggered.connect(lambda _checked=False, i=item: self.open_item(i))
            self.menu.addAction(action)
        self.menu.setEnabled(bool(items))


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
        self.compare_page = ComparePage(self.state)
        self.compare_page.transfer_check_requested.connect(self.check_transfer)
        for page in (self.data_page, self.model_page, self.train_page, self.evaluate_page, self.try_page,
                     self.compare_page):
            self.stack.addWidget(page)
            if hasattr(page, "error"):
                page.error.connect(self.show_error)
        self.steps.currentRowChanged.connect(self.stack.setCurrentIndex)
        self.model_page.start_requested.connect(self.start_training)
        self.train_page.start_button.clicked.connect(self.start_training)
        self.train_page.finished.connect(self._training_finished)
        self.data_page.folder_opened.connect(lambda folder: self.recent_data.remember(folder))
        self.state.data_changed.connect(lambda _s: self._update_steps())
        self.state.run_changed.connect(lambda _r: self._update_steps())
        self.state.training_changed.connect(lambda _t: self._update_steps())
        self.state.runs_changed.connect(self._update_steps)

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
        self.apply_plot_theme(self.dark_action.isChecked())
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
        self.recent_data = RecentList("recent/folders", file_menu.addMenu("Open &recent"), self._open_recent_folder,
                                      self)
        file_menu.addSeparator()
        open_project = QAction("Open &project…", self)
        open_project.triggered.connect(self._open_project_dialog)
        save_project = QAction("&Save project", self, shortcut=QKeySequence.StandardKey.Save)
        save_project.triggered.connect(lambda: self.save_project())
        save_as = QAction("Save project &as…", self, shortcut=QKeySequence.StandardKey.SaveAs)
        save_as.triggered.connect(lambda: self.save_project(ask=True))
        for action in (open_project, save_project, save_as):
            file_menu.addAction(action)
        self.recent_project_list = RecentList("recent/projects", file_menu.addMenu("Recent pro&jects"),
                                              lambda path: self.open_project(Path(path)), self)
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
        self.apply_plot_theme(dark)

    def apply_plot_theme(self, dark: bool) -> None:
        self.train_page.plots.apply_theme(dark)
        self.compare_page.apply_theme(dark)
        self.data_page.audio.apply_theme(dark)

    def recent_folders(self) -> list[str]:
        return self.recent_data.items()

    def _open_recent_folder(self, folder: str) -> None:
        self.steps.setCurrentRow(0)
        self.data_page.open_folder(Path(folder))

    # -- projects -------------------------------------------------------------------------------------
    def _open_project_dialog(self) -> None:
        from PySide6.QtWidgets import QFileDialog

        path, _ = QFileDialog.getOpenFileName(self, "Open project", str(Path.home()), "Studio projects (*.tlsproj)")
        if path:
            self.open_project(Path(path))

    def open_project(self, path: Path) -> None:
        from tlstudio.core.errors import StudioError
        from tlstudio.core.store.project import Project

        try:
            project = Project.load(path)
        except StudioError as exc:
            self.show_error(exc.message, exc.hint)
            return
        self.state.project = project
        if project.settings:
            from tlstudio.core.training.config import TrainConfig

            self.state.config = TrainConfig.from_dict(project.settings)
        self.recent_project_list.remember(project.path)
        self.state.runs_changed.emit()
        finished = [r for r in project.runs if (Path(r) / "metrics.json").is_file()]
        if finished:
            self.state.set_run(Path(finished[-1]))
        if project.data and Path(project.data).is_dir():
            self.data_page.open_folder(Path(project.data))
        else:
            self.show_error(f"The project's data folder {project.data} is not there.", "Choose the folder again.")
        self.setWindowTitle(f"{Path(project.path).stem} — Transfer Learning Studio")

    def save_project(self, ask: bool = False, path: Path | None = None) -> Path | None:
        from PySide6.QtWidgets import QFileDialog

        project = self.state.project
        project.data = str(self.state.folder or project.data)
        project.settings = self.state.config.to_dict()
        if path is None and (ask or not project.path):
            chosen, _ = QFileDialog.getSaveFileName(self, "Save project", str(Path.home() / "project.tlsproj"),
                                                    "Studio projects (*.tlsproj)")
            if not chosen:
                return None
            path = Path(chosen)
        saved = project.save(path)
        self.recent_project_list.remember(str(saved))
        self.setWindowTitle(f"{saved.stem} — Transfer Learning Studio")
        self.statusBar().showMessage(f"Project saved to {saved}")
        return saved

    def recent_projects(self) -> list[str]:
        return self.recent_project_list.items()

    def check_transfer(self, run_path: str) -> None:
        """Train the same network and head from random weights with the same budget, then compare."""
        import json

        from tlstudio.core.training.config import TrainConfig, from_scratch

        if self.state.training or self.state.spec is None:
            return
        config = TrainConfig.from_dict(json.loads((Path(run_path) / "config.json").read_text(encoding="utf-8")))
        twin = from_scratch(config)
        target = runs_home() / f"{time.strftime('%Y%m%d-%H%M%S')}-{twin.backbone}-scratch"
        self._compare_after = [run_path, str(target)]
        self.steps.setCurrentRow(2)
        self.train_page.start(target, twin)
        self.statusBar().showMessage("Training the same network from scratch, with the same budget…")

    # -- flow -----------------------------------------------------------------------------------------
    def _update_steps(self) -> None:
        has_data = self.state.spec is not None
        has_run = self.state.run_dir is not None
        enabled = [True, has_data, has_data, has_run, has_run, bool(self.state.project.runs)]
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
        pending = getattr(self, "_compare_after", None)
        if pending and metrics:
            self._compare_after = None
            self.compare_page.select_paths([str(Path(p).resolve()) for p in pending])
            self.steps.setCurrentRow(5)
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
