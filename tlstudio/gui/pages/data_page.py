"""Step 1, Data: choose or drop a folder; the scan runs in the background; classes, thumbnails, problems."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QDragEnterEvent, QDropEvent
from PySide6.QtWidgets import (
    QComboBox,
    QFileDialog,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QListWidget,
    QProgressBar,
    QPushButton,
    QSplitter,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from tlstudio.core.data.spec import DatasetSpec
from tlstudio.gui.state import StudioState
from tlstudio.gui.tasks import Task
from tlstudio.gui.widgets.audio_view import AudioView
from tlstudio.gui.widgets.thumbnails import ThumbnailGrid


def demo_folder() -> Path:
    import importlib.resources

    return Path(str(importlib.resources.files("tlstudio.resources") / "demo" / "shapes"))


def scan_folder(folder: Path, val_split: float, seed: int, progress, control) -> DatasetSpec:
    from tlstudio.core.data.scan import scan

    def report(done: int, total: int) -> None:
        control.checkpoint()
        progress(done, total)

    return scan(folder, val_split=val_split, seed=seed, check_file="auto", progress=report)


class DataPage(QWidget):
    error = Signal(str, str)
    folder_opened = Signal(str)

    def __init__(self, state: StudioState, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.state = state
        self.task: Task | None = None
        self.setAcceptDrops(True)

        title = QLabel("<h2>1 · Your data</h2>")
        intro = QLabel("Choose a folder of images or sound clips with one sub-folder per class (for example "
                       "<i>cats/</i> and <i>dogs/</i>, or <i>yes/</i> and <i>no/</i>), or with <i>train/</i> and "
                       "<i>val/</i> folders. You can also drop a folder here. The studio only reads it.")
        intro.setWordWrap(True)
        self.choose = QPushButton("Choose folder…")
        self.choose.setToolTip("Pick the folder that holds one sub-folder per class.")
        self.choose.clicked.connect(self._choose)
        self.demo = QPushButton("Use the demo data")
        self.demo.setToolTip("A small built-in set of photos of shapes: train something real right away.")
        self.demo.clicked.connect(lambda: self.open_folder(demo_folder()))
        self.path_label = QLabel("No folder yet.")
        self.path_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.progress = QProgressBar()
        self.progress.setVisible(False)
        self.cancel = QPushButton("Cancel")
        self.cancel.setVisible(False)
        self.cancel.clicked.connect(lambda: self.task and self.task.cancel())

        self.summary = QLabel("")
        self.summary.setWordWrap(True)
        self.table = QTableWidget(0, 4)
        self.table.setHorizontalHeaderLabels(["Class", "Files", "Share", "Train / validation"])
        self.table.horizontalHeader().setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        self.table.verticalHeader().setVisible(False)
        self.table.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
        self.table.setSelectionBehavior(QTableWidget.SelectionBehavior.SelectRows)
        self.table.itemSelectionChanged.connect(self._class_selected)
        self.problems = QListWidget()
        self.problems.setToolTip("Files that will not be used, and why.")

        self.class_pick = QComboBox()
        self.class_pick.currentIndexChanged.connect(self._show_class)
        self.grid = ThumbnailGrid(96)
        self.clips = QListWidget()
        self.clips.setToolTip("Click a clip to see its waveform and spectrogram, and to play it.")
        self.clips.currentTextChanged.connect(self._clip_selected)
        self.audio = AudioView()
        self.audio_panel = QSplitter(Qt.Orientation.Vertical)
        self.audio_panel.addWidget(self.clips)
        self.audio_panel.addWidget(self.audio)
        self.audio_panel.setSizes([180, 420])
        self.audio_panel.setVisible(False)

        top = QHBoxLayout()
        for widget in (self.choose, self.demo, self.path_label):
            top.addWidget(widget)
        top.addStretch(1)
        busy = QHBoxLayout()
        busy.addWidget(self.progress, 1)
        busy.addWidget(self.cancel)
        left = QWidget()
        left_layout = QVBoxLayout(left)
        left_layout.setContentsMargins(0, 0, 0, 0)
        left_layout.addWidget(self.summary)
        left_layout.addWidget(self.table, 3)
        left_layout.addWidget(QLabel("<b>Problems found</b>"))
        left_layout.addWidget(self.problems, 2)
        right = QWidget()
        right_layout = QVBoxLayout(right)
        right_layout.setContentsMargins(0, 0, 0, 0)
        pick = QHBoxLayout()
        self.pick_label = QLabel("<b>Thumbnails of</b>")
        pick.addWidget(self.pick_label)
        pick.addWidget(self.class_pick, 1)
        right_layout.addLayout(pick)
        right_layout.addWidget(self.grid)
        right_layout.addWidget(self.audio_panel)
        splitter = QSplitter()
        splitter.addWidget(left)
        splitter.addWidget(right)
        splitter.setSizes([420, 560])
        layout = QVBoxLayout(self)
        layout.addWidget(title)
        layout.addWidget(intro)
        layout.addLayout(top)
        layout.addLayout(busy)
        layout.addWidget(splitter, 1)
        self._render(None)

    # -- intent ---------------------------------------------------------------------------------------
    def _choose(self) -> None:
        start = str(self.state.folder or Path.home())
        folder = QFileDialog.getExistingDirectory(self, "Choose the data folder", start)
        if folder:
            self.open_folder(Path(folder))

    def dragEnterEvent(self, event: QDragEnterEvent) -> None:
        if event.mimeData().hasUrls():
            event.acceptProposedAction()

    def dropEvent(self, event: QDropEvent) -> None:
        paths = [Path(url.toLocalFile()) for url in event.mimeData().urls() if url.isLocalFile()]
        folders = [p for p in paths if p.is_dir()]
        if folders:
            self.open_folder(folders[0])

    def open_folder(self, folder: Path) -> Task:
        """Scan in the background; the page stays usable and shows progress."""
        if self.task is not None:
            self.task.cancel()
        config = self.state.config
        self.path_label.setText(str(folder))
        self.progress.setRange(0, 0)
        self.progress.setFormat("Scanning… %v / %m files")
        self.progress.setVisible(True)
        self.cancel.setVisible(True)
        task = Task(lambda progress, control: scan_folder(folder, config.val_split, config.seed, progress, control))
        task.progress.connect(self._on_progress)
        task.finished.connect(lambda spec: self._on_scanned(folder, spec))
        task.failed.connect(self._on_failed)
        task.done.connect(self._scan_ended)
        self.task = task.start()
        return task

    # -- results --------------------------------------------------------------------------------------
    def _on_progress(self, done: int, total: int) -> None:
        self.progress.setRange(0, max(total, 1))
        self.progress.setValue(done)

    def _scan_ended(self) -> None:
        self.progress.setVisible(False)
        self.cancel.setVisible(False)

    def _on_failed(self, message: str, hint: str) -> None:
        if message != "Cancelled.":
            self.error.emit(message, hint)
        self.path_label.setText(f"{self.path_label.text()}: {message}")

    def _on_scanned(self, folder: Path, spec: DatasetSpec) -> None:
        self.state.set_data(folder, spec)
        self.folder_opened.emit(str(folder))
        self._render(spec)

    def _render(self, spec: DatasetSpec | None) -> None:
        self.table.setRowCount(0)
        self.problems.clear()
        self.class_pick.clear()
        if spec is None:
            self.summary.setText("Choose a folder, drop one here, or try the demo data.")
            self.grid.thumbs.set_paths([])
            return
        train, val = spec.counts("train"), spec.counts("val")
        total = sum(train.values()) + sum(val.values())
        split = ("your train/ and val/ folders" if spec.split_source == "folders"
                 else f"a random {round(100 * len(spec.val) / max(total, 1))}% held out for validation")
        kind = "sound clips" if spec.modality == "audio" else "images"
        self.summary.setText(f"<b>{len(spec.classes)} classes, {total} {kind}</b>: "
                             f"{len(spec.train)} to train, {len(spec.val)} to validate ({split}).")
        self.table.setRowCount(len(spec.classes))
        largest = max((train[c] + val[c] for c in spec.classes), default=1)
        for row, name in enumerate(spec.classes):
            count = train[name] + val[name]
            bar = QProgressBar()
            bar.setRange(0, largest)
            bar.setValue(count)
            bar.setFormat(f"{100 * count / max(total, 1):.0f}%")
            bar.setMaximumHeight(18)
            for col, text in ((0, name), (1, str(count)), (3, f"{train[name]} / {val[name]}")):
                item = QTableWidgetItem(text)
                if col:
                    item.setTextAlignment(Qt.AlignmentFlag.AlignCenter)
                self.table.setItem(row, col, item)
            self.table.setCellWidget(row, 2, bar)
            self.class_pick.addItem(f"{name} ({count})", name)
        for warning in spec.warnings:
            self.problems.addItem(f"ⓘ {warning}")
        for skipped in spec.skipped:
            self.problems.addItem(f"✗ {Path(skipped.path).name}: {skipped.reason}")
        if not spec.warnings and not spec.skipped:
            self.problems.addItem("✓ No problems found.")

    def _class_selected(self) -> None:
        rows = {index.row() for index in self.table.selectedIndexes()}
        if rows:
            self.class_pick.setCurrentIndex(min(rows))

    def _show_class(self, index: int) -> None:
        spec = self.state.spec
        if spec is None or index < 0:
            return
        label = spec.classes.index(self.class_pick.itemData(index))
        paths = sorted(s.path for s in spec.train + spec.val if s.label == label)
        sound = spec.modality == "audio"
        self.grid.setVisible(not sound)
        self.audio_panel.setVisible(sound)
        self.pick_label.setText("<b>Clips of</b>" if sound else "<b>Thumbnails of</b>")
        if sound:
            self._clip_paths = {Path(p).name: p for p in paths}
            self.clips.clear()
            self.clips.addItems(list(self._clip_paths))
            if paths:
                self.clips.setCurrentRow(0)
        else:
            self.grid.thumbs.set_paths(paths)

    def _clip_selected(self, name: str) -> None:
        path = getattr(self, "_clip_paths", {}).get(name)
        if path:
            self.audio.show_clip(path)
