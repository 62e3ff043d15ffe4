"""The main window's project files: open (a dialog, the recent list, the last one at launch), save, and the
window title that names the project. A mixin of MainWindow: it uses the window's state, pages and menus."""

from __future__ import annotations

from pathlib import Path

from tlstudio.gui.settings import settings
from tlstudio.gui.state import is_untitled


def proposed_project_path(project) -> Path:
    """Named after its data folder, in the user's Documents (a user was offered /root/project.tlsproj)."""
    from PySide6.QtCore import QStandardPaths

    documents = QStandardPaths.writableLocation(QStandardPaths.StandardLocation.DocumentsLocation)
    name = Path(project.data).name if project.data else "project"
    return Path(documents or Path.home()) / f"{name}.tlsproj"


class ProjectFiles:
    def open_project_dialog(self) -> None:
        from PySide6.QtWidgets import QFileDialog

        path, _ = QFileDialog.getOpenFileName(self, "Open project", str(Path.home()), "Studio projects (*.tlsproj)")
        if path:
            self.open_project(Path(path))

    def reopen_last(self) -> bool:
        """At launch: the last project, when the setting says so and the file is still there."""
        last = settings().value("project/last", "")
        if not self.reopen_action.isChecked() or not last or not Path(last).is_file():
            return False
        return self.open_project(Path(last))

    def open_project(self, path: Path) -> bool:
        """Data, settings into every page, the active run with its curves, Evaluate and Try."""
        from tlstudio.core.errors import StudioError
        from tlstudio.core.store.project import Project
        from tlstudio.core.training.config import TrainConfig

        try:
            project = Project.load(path)
            config, ignored = TrainConfig.parse(project.settings) if project.settings else (TrainConfig(), [])
        except StudioError as exc:
            self.show_error(exc.message, exc.hint)
            return False
        except TypeError as exc:
            self.show_error(f"The project's settings could not be read ({exc}).", "Using the default settings.")
            config, ignored = TrainConfig(), []
        self.state.project = project
        self.state.config = config
        self.model_page.apply_config(config)
        if ignored:
            self.show_error(f"The project has settings this version does not know; they were ignored: "
                            f"{', '.join(ignored)}.", "Save the project to drop them.")
        active = Path(project.active_run) if project.active_run else None
        from tlstudio.core.store.runs import RunDir

        if active is None or not RunDir(active).has_results:
            finished = [r for r in project.runs if RunDir(Path(r)).has_results]
            active = Path(finished[-1]) if finished else None
        self.state.folder = Path(project.data) if project.data else None  # no "switch": this is the project's
        self.state.runs_changed.emit()
        self.state.set_run(active)
        if project.data and Path(project.data).is_dir():
            self.data_page.open_folder(Path(project.data))
        elif project.data:
            self.show_error(f"The project's data folder {project.data} is not there.", "Choose the folder again.")
        self.state.dirty = False
        self._remember_project(project.path)
        return True

    def _remember_project(self, path: str) -> None:
        settings().setValue("project/last", path)
        if not is_untitled(self.state.project):
            self.recent_project_list.remember(path)
        self._project_changed()

    def _project_changed(self) -> None:
        project = self.state.project
        if project.path:
            settings().setValue("project/last", project.path)
        name = "Untitled project" if is_untitled(project) else Path(project.path).stem
        self.setWindowTitle(f"{name} — Transfer Learning Studio")

    def save_project(self, ask: bool = False, path: Path | None = None) -> Path | None:
        from PySide6.QtWidgets import QFileDialog

        self.model_page.collect()
        project = self.state.sync_project()
        if path is None and (ask or not project.path or is_untitled(project)):
            chosen, _ = QFileDialog.getSaveFileName(self, "Save project", str(proposed_project_path(project)),
                                                    "Studio projects (*.tlsproj)")
            if not chosen:
                return None
            path = Path(chosen)
        saved = project.save(path)
        self.state.dirty = False
        self._remember_project(str(saved))
        self.statusBar().showMessage(f"Project saved to {saved}", 30000)  # news, not a state
        return saved

    def recent_projects(self) -> list[str]:
        return self.recent_project_list.items()

    # -- another folder -----------------------------------------------------------------------------------
    def open_data_folder(self, folder: str | Path) -> None:
        """A folder the user chose (dialog, drop, demo, recent list). One project holds one folder's work: a
        folder other than the project's, when the project has runs or choices of the user's, asks first
        whether to start a new project; nothing is ever mixed silently."""
        folder = Path(folder)
        if not self._ready_for_folder(folder):
            return
        self.steps.setCurrentRow(0)
        self.data_page.open_folder(folder)

    def _ready_for_folder(self, folder: Path) -> bool:
        from tlstudio.gui.state import same_folder

        project = self.state.project
        if not project.data or same_folder(project.data, folder):
            return True
        if self.state.training:
            self.show_error("A model is training on the open folder.", "Stop it (or wait) before opening another.")
            return False
        if not (project.runs or project.excluded or project.relabelled):
            return True  # nothing of the old folder's to keep apart: the project simply follows the folder
        answer = self._ask_new_project(folder)
        if answer == "new":
            self.new_project()
        return answer != "cancel"

    def _ask_new_project(self, folder: Path) -> str:
        """'new', 'same' or 'cancel'."""
        from PySide6.QtWidgets import QMessageBox

        name = "this project" if is_untitled(self.state.project) else Path(self.state.project.path).stem
        box = QMessageBox(QMessageBox.Icon.Question, "Another data folder",
                          f"{folder.name} is not the data folder of {name}. Start a new project for it?", parent=self)
        box.setInformativeText("A new project keeps this one as it is (its runs, and the files you left out or "
                               "relabelled). Using the folder here replaces the project's data folder; its runs "
                               "stay listed but were trained on other data.")
        new = box.addButton("New project", QMessageBox.ButtonRole.AcceptRole)
        same = box.addButton("Use it in this project", QMessageBox.ButtonRole.DestructiveRole)
        box.addButton(QMessageBox.StandardButton.Cancel)
        box.setDefaultButton(new)
        box.exec()
        return {id(new): "new", id(same): "same"}.get(id(box.clickedButton()), "cancel")

    def new_project(self) -> None:
        """An empty untitled project with the settings in use; the old one is kept on disk as it was."""
        from tlstudio.core.store.project import Project

        if self.state.dirty and not is_untitled(self.state.project):
            self.save_project(path=Path(self.state.project.path))
        else:
            self.state.autosave()
        self.state.project = Project(settings=self.state.config.to_dict())
        self.state.dirty = False
        self.state.set_run(None)
        self.state.runs_changed.emit()
        self.state.excluded_changed.emit()
        self._project_changed()
