"""The studio's shared state: what every page renders. Pages read it and listen; they never own it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from PySide6.QtCore import QObject, Signal

from tlstudio.core.data.spec import DatasetSpec
from tlstudio.core.store.project import Project
from tlstudio.core.training.config import TrainConfig


class StudioState(QObject):
    data_changed = Signal(object)  # DatasetSpec | None
    run_changed = Signal(object)  # Path | None: the run that Evaluate / Try show
    runs_changed = Signal()  # a run started or finished
    training_changed = Signal(bool)

    def __init__(self) -> None:
        super().__init__()
        self.folder: Path | None = None
        self.spec: DatasetSpec | None = None
        self.config = TrainConfig()
        self.run_dir: Path | None = None
        self.runs: list[dict[str, Any]] = []  # {"path", "metrics"}: runs finished in this session
        self.project = Project()
        self.training = False

    def set_data(self, folder: Path, spec: DatasetSpec) -> None:
        self.folder, self.spec = folder, spec
        self.config.data = str(folder)
        self.data_changed.emit(spec)

    def set_run(self, run_dir: Path | None) -> None:
        self.run_dir = run_dir
        self.run_changed.emit(run_dir)

    def add_run(self, run_dir: Path, metrics: dict[str, Any]) -> None:
        self.runs.append({"path": str(run_dir), "metrics": metrics})
        self.project.add_run(run_dir)
        self.project.data = str(self.folder or self.project.data)
        self.project.settings = self.config.to_dict()
        if self.project.path:
            self.project.save()
        self.runs_changed.emit()

    def set_training(self, training: bool) -> None:
        self.training = training
        self.training_changed.emit(training)
