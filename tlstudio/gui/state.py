"""The studio's shared state: what every page renders. Pages read it and listen; they never own it.

The active run (`run_dir`) is a choice the user makes and sees: a finished run becomes active, "Use this
run" or File > Open run makes another one active, and nothing else replaces it (the "from scratch" twin
is a comparison, never the active model unless chosen).

The project is kept as the user works: an untitled project is written to the studio's data folder from
the first scan on (`autosave`), so nothing is lost if the window closes; a named project gets its runs
written at once and asks about the rest (`dirty`) when the window closes.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from pathlib import Path
from typing import Any

from PySide6.QtCore import QObject, Signal

from tlstudio.core.data.spec import DatasetSpec
from tlstudio.core.store.paths import data_home
from tlstudio.core.store.project import Project
from tlstudio.core.training.config import TrainConfig

log = logging.getLogger(__name__)


def projects_home() -> Path:
    return data_home() / "projects"


def is_untitled(project: Project) -> bool:
    return not project.path or (Path(project.path).parent == projects_home().resolve() and \
        Path(project.path).stem.startswith("untitled"))


def same_folder(a: str | Path | None, b: str | Path | None) -> bool:
    if not a or not b:
        return False
    try:
        return Path(a).resolve() == Path(b).resolve()
    except OSError:
        return str(a) == str(b)


def run_data_folder(run_dir: str | Path) -> str | None:
    """The data folder a run was trained on (config.json's data, else its dataset.json root)."""
    from tlstudio.core.store.runs import RunDir

    run = RunDir(Path(run_dir))
    for name, key in (("config.json", "data"), ("dataset.json", "root")):
        value = run.read_json_or(name, {}).get(key)
        if value:
            return str(value)
    return None


class StudioState(QObject):
    data_changed = Signal(object)  # DatasetSpec | None
    data_switched = Signal()  # another folder than before: views tied to the old data reset
    run_changed = Signal(object)  # Path | None: the run that Evaluate / Try show
    runs_changed = Signal()  # a run started or finished, or a project was opened
    training_changed = Signal(bool)
    project_changed = Signal()  # opened, saved or renamed
    excluded_changed = Signal()
    settings_changed = Signal(str)  # a setting of `config` changed (its name; "" for all): pages show it

    def __init__(self) -> None:
        super().__init__()
        self.folder: Path | None = None
        self.spec: DatasetSpec | None = None
        self.config = TrainConfig()
        self.run_dir: Path | None = None
        self.runs: list[dict[str, Any]] = []  # {"path", "metrics"}: runs finished in this session
        self.project = Project()
        self.training = False
        self.dirty = False  # changes a named project has not saved yet

    # -- data ---------------------------------------------------------------------------------------
    def set_data(self, folder: Path, spec: DatasetSpec) -> None:
        switched = self.folder is not None and not same_folder(self.folder, folder)
        self.folder, self.spec = folder, spec
        self.config.data = str(folder)
        if not same_folder(self.project.data, folder):
            self.project.data = str(folder)
            self.touch()
        if switched:
            if self.run_dir is not None and not same_folder(run_data_folder(self.run_dir), folder):
                self.set_run(None)
            self.data_switched.emit()
        self.data_changed.emit(spec)
        self.autosave()

    def clear_data(self) -> None:
        """The open folder can no longer be read as it was shown: nothing to train on until it is chosen again."""
        if self.spec is not None:
            self.spec = None
            self.data_changed.emit(None)

    def excluded(self) -> set[str]:
        return set(self.project.excluded)

    def set_excluded(self, path: str, leave_out: bool) -> None:
        """Leave a file out of training (kept in the project; the file itself is never touched)."""
        paths = [p for p in self.project.excluded if p != path] + ([path] if leave_out else [])
        if paths != self.project.excluded:
            self.project.excluded = paths
            self.touch()
            self.autosave()
            self.excluded_changed.emit()

    def relabelled(self) -> dict[str, str]:
        return dict(self.project.relabelled)

    def set_label(self, path: str, label: str | None) -> None:
        """Say a file is of another class (kept in the project; the folder is never changed); None undoes it."""
        labels = {p: c for p, c in self.project.relabelled.items() if p != path}
        if label is not None:
            labels[path] = label
        if labels != self.project.relabelled:
            self.project.relabelled = labels
            self.touch()
            self.autosave()
            self.excluded_changed.emit()

    def training_spec(self, spec: DatasetSpec | None = None) -> DatasetSpec | None:
        """The spec without the files the user left out, and with the labels the user corrected."""
        spec = spec or self.spec
        left_out = self.excluded()
        labels = self.relabelled() if spec is not None and not spec.regression else {}
        if spec is None or not (left_out or labels):
            return spec
        index = {name: i for i, name in enumerate(spec.classes)}

        def corrected(samples):
            return [dataclasses.replace(s, label=index[labels[s.path]]) if labels.get(s.path) in index else s
                    for s in samples if s.path not in left_out]

        return dataclasses.replace(spec, train=corrected(spec.train), val=corrected(spec.val),
                                   test=corrected(spec.test))

    # -- runs ---------------------------------------------------------------------------------------
    def set_run(self, run_dir: Path | None) -> None:
        run_dir = Path(run_dir) if run_dir is not None else None
        self.run_dir = run_dir
        active = str(run_dir.resolve()) if run_dir is not None else ""
        if active != self.project.active_run:
            self.project.active_run = active
            self.touch()
            self.autosave()
        self.run_changed.emit(run_dir)

    def add_run(self, run_dir: Path, metrics: dict[str, Any]) -> None:
        self.runs.append({"path": str(run_dir), "metrics": metrics})
        self.project.add_run(run_dir)
        self.project.data = str(self.folder or self.project.data)
        self.project.settings = self.config.to_dict()
        self.touch()
        if self.project.path and not is_untitled(self.project):
            self.project.save()  # a named project never loses a run, asked or not
        self.autosave()
        self.runs_changed.emit()

    def set_training(self, training: bool) -> None:
        self.training = training
        self.training_changed.emit(training)

    # -- the project --------------------------------------------------------------------------------
    def touch(self) -> None:
        self.dirty = True

    def sync_project(self) -> Project:
        project = self.project
        project.data = str(self.folder or project.data)
        project.settings = self.config.to_dict()
        project.active_run = str(self.run_dir.resolve()) if self.run_dir is not None else ""
        return project

    def autosave(self) -> Path | None:
        """An untitled project is kept in the studio's data folder from the first scan on."""
        if not is_untitled(self.project) or not (self.project.data or self.project.runs):
            return None
        project = self.sync_project()
        try:
            if not project.path:
                projects_home().mkdir(parents=True, exist_ok=True)
                target = projects_home() / f"untitled-{time.strftime('%Y%m%d-%H%M%S')}"
                suffix = 1
                while target.with_suffix(".tlsproj").exists():
                    suffix += 1
                    target = target.with_name(f"untitled-{time.strftime('%Y%m%d-%H%M%S')}-{suffix}")
                saved = project.save(target)
                self.project_changed.emit()
                return saved
            return project.save()
        except OSError as exc:  # a read-only home: the window still works, the log says why
            log.warning("could not keep the untitled project: %s", exc)
            return None
