"""Continue the active model on new data (--from in the command line): the new folder is opened and scanned
first, and only when that very folder's scan has finished does training start from the model.

A scan that fails, is cancelled or is superseded forgets the continuation: the next folder opened is a
folder, not a continuation.
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QObject, QTimer, Signal

from tlstudio.gui.pages.data_page import DataPage


class Continuation(QObject):
    ready = Signal(object)  # the run (a Path) to continue from, once its new data is open

    def __init__(self, data_page: DataPage, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.data_page = data_page
        self.pending: tuple[Path, str] | None = None  # (the run, the new data folder)
        data_page.folder_opened.connect(self._opened)
        data_page.error.connect(lambda *_: self.forget())

    def begin(self, run_dir: Path, folder: str | Path) -> None:
        self.pending = (Path(run_dir), str(Path(folder)))
        task = self.data_page.open_folder(Path(folder), min_classes=1, from_memory=False)  # train on it as it is
        task.done.connect(lambda: QTimer.singleShot(0, self.forget))  # after `finished` has run

    def forget(self) -> None:
        self.pending = None

    def _opened(self, folder: str) -> None:
        pending = self.pending
        if pending is not None and pending[1] == str(Path(folder)):
            self.pending = None
            self.ready.emit(pending[0])
