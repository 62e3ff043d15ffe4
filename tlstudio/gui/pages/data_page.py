"""Step 1, Data: choose or drop a folder; the scan runs in the background; classes, thumbnails, problems."""

from __future__ import annotations

import os
from pathlib import Path

from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtGui import QDragEnterEvent, QDropEvent
from PySide6.QtWidgets import (
    QComboBox,
    QDoubleSpinBox,
    QFileDialog,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QMenu,
    QPushButton,
    QSplitter,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from tlstudio.core.data.spec import DatasetSpec
from tlstudio.gui.advice import grouping_line
from tlstudio.gui.binder import SettingsBinder
from tlstudio.gui.data_digest import FolderDigest, digest, relative
from tlstudio.gui.state import StudioState
from tlstudio.gui.tasks import Task, settle_long_lived
from tlstudio.gui.widgets.audio_view import AudioView
from tlstudio.gui.widgets.elided_label import ElidedLabel
from tlstudio.gui.widgets.line_list import LineList
from tlstudio.gui.widgets.page_area import show_rows
from tlstudio.gui.widgets.share_bar import ShareBar
from tlstudio.gui.widgets.task_progress import TaskProgress
from tlstudio.gui.widgets.thumbnails import ThumbnailGrid
from tlstudio.gui.widgets.wrapped_label import WrappedLabel


def demo_folder() -> Path:
    import importlib.resources

    return Path(str(importlib.resources.files("tlstudio.resources") / "demo" / "shapes"))


def split_again(spec: DatasetSpec, val_split: float, group_by: str, _progress, _control) -> FolderDigest:
    """The same files split with another share or grouping (nothing read again: core/data/split_stage.py)."""
    from tlstudio.core.data.split_stage import resplit

    return digest(resplit(spec, val_split, int(spec.split_settings.get("seed", 0)), group_by))


GROUPINGS = {"auto": "Automatic (a source in the file names)", "none": "Nothing (each file on its own)",
             "folder": "Sub-folders inside each class"}


def scan_folder(folder: Path, settings: dict, progress, control) -> tuple[FolderDigest, str]:
    """Read the folder; remember the result for the next time it opens; the news since the remembered scan."""
    from tlstudio.core.data import remembered
    from tlstudio.core.data.scan import scan

    def report(done: int, total: int) -> None:
        control.checkpoint()
        progress(done, total)

    spec = scan(folder, check_file="auto", progress=report, **settings)
    before = remembered.recall(folder, settings)
    news = remembered.what_changed(before, spec) if before is not None else ""
    remembered.remember(folder, settings, spec)
    summary = digest(spec)  # here, in the scan's thread: the page only copies it into its widgets
    settle_long_lived()  # the file list lives as long as the folder is open: no full collection walks it again
    return summary, news


def recall_folder(folder: Path, settings: dict) -> FolderDigest | None:
    """The folder as it was last read (core/data/remembered.py), to show while it is read again."""
    from tlstudio.core.data import remembered

    spec = remembered.recall(folder, settings)
    return digest(spec) if spec is not None and Path(spec.root) == Path(folder) else None


class DataPage(QWidget):
    error = Signal(str, str)
    news = Signal(str)  # what changed in a folder since it was last read
    folder_opened = Signal(str)
    folder_chosen = Signal(str)  # the user's choice (dialog, drop, demo): the window decides where it goes
    map_requested = Signal()

    def __init__(self, state: StudioState, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.state = state
        self.task: Task | None = None
        self.recall_task: Task | None = None
        self._interim = False  # the folder shown is the remembered one, while the rescan runs
        self._fresh = False  # the scan of the folder asked for last has delivered
        self._digest: FolderDigest | None = None  # the open folder's, from the scan's thread
        self.setAcceptDrops(True)

        title = QLabel("<h2>1 · Your data</h2>")
        intro = QLabel("Choose a folder of images or sound clips with one sub-folder per class (for example "
                       "<i>cats/</i> and <i>dogs/</i>, or <i>yes/</i> and <i>no/</i>), or with <i>train/</i> and "
                       "<i>val/</i> folders. You can also drop a folder here. The studio only reads it.")
        intro.setWordWrap(True)
        self.choose = QPushButton("Choose folder…")
        self.choose.setToolTip("Pick the folder that holds one sub-folder per class.")
        self.choose.clicked.connect(lambda: self.choose_folder())
        self.demo = QPushButton("Use the demo data")
        self.demo.setToolTip("A small built-in set of photos of shapes: train something real right away.")
        self.demo.clicked.connect(lambda: self.folder_chosen.emit(str(demo_folder())))
        self.map_button = QPushButton("Map of the files…")
        self.map_button.setToolTip("Once a model is trained: every file placed by what the network sees in it, to "
                                   "find clusters, outliers and files that look mislabelled.")
        self.map_button.clicked.connect(self.map_requested)
        self.map_button.setEnabled(False)
        state.run_changed.connect(lambda run: self.map_button.setEnabled(run is not None))
        self.path_label = ElidedLabel("No folder yet.")
        self.path_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.progress = TaskProgress()  # files read, the time left, and Cancel

        self.summary = WrappedLabel("")  # wrapped labels in the splitter's column: their lines count
        self.summary.setWordWrap(True)
        self.split_label = WrappedLabel("")
        self.split_label.setWordWrap(True)
        # the split is the data set's: set here, where it is shown; a change re-splits without reading files
        self.split_settings = SettingsBinder(self)
        self.val_share = self.split_settings.bind(QDoubleSpinBox(), "val_split")
        self.val_share.setAccessibleName("Validation share")
        self.keep_together = QComboBox()
        self.keep_together.setEditable(True)  # or a regular expression whose first group names the source
        self.keep_together.setAccessibleName("Keep together")
        # shrinks with the window (its longest choice is 260 px): the page must fit 960 px without scrolling
        self.keep_together.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        self.keep_together.setMinimumContentsLength(12)
        for value, words in GROUPINGS.items():
            self.keep_together.addItem(words, value)
        self.keep_together.setToolTip("What must stay on one side of the split, so validation judges new "
                                      "sources: a speaker, a session, a photo's copies. Type a regular "
                                      "expression whose first group names the source to choose your own.")
        self.split_settings.edited.connect(lambda _name: self._split_changed())
        self.keep_together.activated.connect(lambda _index: self._split_changed())
        self.keep_together.lineEdit().editingFinished.connect(self._split_changed)
        self._split_timer = QTimer(self, singleShot=True, interval=300)  # one re-split for a run of clicks
        self._split_timer.timeout.connect(self._resplit)
        self.split_row = QWidget()
        split_row = QHBoxLayout(self.split_row)
        split_row.setContentsMargins(0, 0, 0, 0)
        for words, widget in (("Validation share", self.val_share), ("Keep together", self.keep_together)):
            label = QLabel(words)
            label.setBuddy(widget)
            split_row.addWidget(label)
            split_row.addWidget(widget, 1 if widget is self.keep_together else 0)
        self.split_row.setVisible(False)
        self.table = QTableWidget(0, 4)
        self.table.setHorizontalHeaderLabels(["Class", "Files", "Share", "Train / validation"])
        self.table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        self.table.horizontalHeader().setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        self.table.setTextElideMode(Qt.TextElideMode.ElideMiddle)  # a long class name: whole in its tooltip
        self.table.verticalHeader().setVisible(False)
        show_rows(self.table, 2)  # at a small window the page scrolls, the table keeps 2 rows
        self.table.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
        self.table.setSelectionBehavior(QTableWidget.SelectionBehavior.SelectRows)
        self.table.itemSelectionChanged.connect(self._class_selected)
        self.table.setItemDelegateForColumn(2, ShareBar(self.table))  # painted, not a widget per class
        self.notes = WrappedLabel("")  # advice and warnings: a few lines, each read whole
        self.notes.setWordWrap(True)
        self.notes.setTextFormat(Qt.TextFormat.PlainText)
        self.notes.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.problems = LineList(wrap=True)  # virtualised: thousands of unreadable files list instantly
        self.problems.setToolTip("Files that will not be used, and why (hover a line to read it whole).")
        self.problems.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)

        self.class_pick = QComboBox()
        self.class_pick.currentIndexChanged.connect(self._show_class)
        self.grid = ThumbnailGrid(96)
        self.grid.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        self.grid.customContextMenuRequested.connect(self._thumb_menu)
        self.grid.setToolTip("Right-click a picture to leave it out of training (the file is never touched).")

        self.clips = LineList()
        self.clips.setToolTip("Click a clip to see its waveform and spectrogram, and to play it.")
        self.clips.current_text_changed.connect(self._clip_selected)
        self.clips.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        self.clips.customContextMenuRequested.connect(self._clip_menu)
        self.audio = AudioView()
        self.audio_panel = QSplitter(Qt.Orientation.Vertical)
        self.audio_panel.addWidget(self.clips)
        self.audio_panel.addWidget(self.audio)
        self.audio_panel.setSizes([180, 420])
        self.audio_panel.setVisible(False)

        top = QHBoxLayout()
        for widget in (self.choose, self.demo):
            top.addWidget(widget)
        top.addWidget(self.path_label, 1)
        busy = QHBoxLayout()
        busy.addWidget(self.progress, 1)
        left = QWidget()
        left_layout = QVBoxLayout(left)
        left_layout.setContentsMargins(0, 0, 0, 0)
        left_layout.addWidget(self.summary)
        left_layout.addWidget(self.split_label)
        left_layout.addWidget(self.split_row)
        left_layout.addWidget(self.table, 3)
        left_layout.addWidget(QLabel("<b>Problems found and advice</b>"))
        left_layout.addWidget(self.notes)
        left_layout.addWidget(self.problems, 2)
        map_row = QHBoxLayout()
        map_row.addStretch(1)
        map_row.addWidget(self.map_button)
        left_layout.addLayout(map_row)
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
        state.excluded_changed.connect(self._excluded_changed)

    # -- intent ---------------------------------------------------------------------------------------
    def choose_folder(self) -> None:
        """Ask for a folder, and open it."""
        start = str(self.state.folder or Path.home())
        folder = QFileDialog.getExistingDirectory(self, "Choose the data folder", start)
        if folder:
            self.folder_chosen.emit(folder)

    def _grouping(self) -> str:
        index = self.keep_together.currentIndex()
        text = self.keep_together.currentText().strip()
        if index >= 0 and self.keep_together.itemText(index) == text:
            return str(self.keep_together.itemData(index))
        return text or "auto"

    def _show_split_settings(self, spec: DatasetSpec | None) -> None:
        drawn = spec is not None and spec.split_source != "folders" and spec.contents is not None
        self.split_row.setVisible(drawn)
        if spec is None:
            return
        settings = spec.split_settings
        self.val_share.blockSignals(True)  # the split shown is the data set's own, not an edit
        self.val_share.setValue(float(settings.get("val_split", self.state.config.val_split)))
        self.val_share.blockSignals(False)
        group_by = str(settings.get("group_by", "auto"))
        index = self.keep_together.findData(group_by)
        if index >= 0:
            self.keep_together.setCurrentIndex(index)
        else:
            self.keep_together.setEditText(group_by)

    def _split_changed(self) -> None:
        spec = self.state.spec
        if spec is None:
            return
        wanted = (round(self.val_share.value(), 4), self._grouping())
        current = (round(float(spec.split_settings.get("val_split", -1)), 4), spec.split_settings.get("group_by"))
        if wanted != current:
            self._split_timer.start()

    def _resplit(self) -> None:
        spec, folder = self.state.spec, self.state.folder
        if spec is None or folder is None:
            return
        if self.task is not None and self.task.thread.isRunning():  # a scan or a split still going: then
            self._split_timer.start()
            return
        val_split, group_by = self.val_share.value(), self._grouping()
        self.state.config.val_split, self.state.config.group_by = val_split, group_by
        self.split_label.setText("Splitting again…")
        task = Task(lambda progress, control: split_again(spec, val_split, group_by, progress, control),
                    needs_torch=False)
        task.finished.connect(lambda summary: self._on_scanned(folder, summary))
        task.failed.connect(self._on_failed_split)
        self.task = task.start()

    def _on_failed_split(self, message: str, hint: str) -> None:
        self.error.emit(message, hint)
        self._render(self.state.spec)

    def apply_theme(self, dark: bool) -> None:
        self.audio.apply_theme(dark)

    def dragEnterEvent(self, event: QDragEnterEvent) -> None:
        if event.mimeData().hasUrls():
            event.acceptProposedAction()

    def dropEvent(self, event: QDropEvent) -> None:
        paths = [Path(url.toLocalFile()) for url in event.mimeData().urls() if url.isLocalFile()]
        folders = [p for p in paths if p.is_dir()]
        if folders:
            self.folder_chosen.emit(str(folders[0]))

    def open_folder(self, folder: Path, min_classes: int = 2, from_memory: bool = True) -> Task:
        """Scan in the background; the page stays usable and shows progress. A folder read before shows at
        once as it was then (`from_memory`), while the scan checks it. A scan still running for another folder
        is dropped: it stops, and its result never arrives. `min_classes` 1: new data for a model that keeps
        learning (one new class is enough)."""
        for old in (self.task, self.recall_task):
            if old is not None:
                old.drop()
        config = self.state.config
        self.path_label.setText(str(folder))
        self._interim = self._fresh = False
        if self.state.spec is not None:
            self.summary.setText(f"Reading {folder.name}…")
        settings = {"val_split": config.val_split, "seed": config.seed, "group_by": config.group_by,
                    "min_classes": min_classes}
        if from_memory:
            recall = Task(lambda _progress, _control: recall_folder(folder, settings), needs_torch=False)
            recall.finished.connect(lambda summary: self._on_recalled(folder, summary))
            self.recall_task = recall.start()
        task = Task(lambda progress, control: scan_folder(folder, settings, progress, control), needs_torch=False)
        task.finished.connect(lambda result: self._on_rescanned(folder, *result))
        task.failed.connect(self._on_failed)
        self.progress.follow(task, "Scanning…", unit="files")
        self.task = task.start()
        return task

    # -- results --------------------------------------------------------------------------------------
    def _on_failed(self, message: str, hint: str) -> None:
        if message != "Cancelled.":
            self.error.emit(message, hint)
        self.path_label.setText(f"{self.path_label.text()}: {message}")
        if self._interim and message != "Cancelled.":  # what was shown from memory is not the folder now
            self._interim = False
            self.state.clear_data()
            self._render(None)

    def _on_recalled(self, folder: Path, summary: FolderDigest | None) -> None:
        """The remembered folder, shown until the scan ends (unless the scan ended first)."""
        if summary is None or self._fresh:
            return
        self._interim = True
        self.progress.retitle("Checking the folder for changes…")
        self._on_scanned(folder, summary)

    def _on_rescanned(self, folder: Path, summary: FolderDigest, news: str) -> None:
        shown = self.state.spec if self._interim else None
        self._interim, self._fresh = False, True
        if shown is not None and not news:  # as remembered: keep what is shown, add what only a scan knows
            shown.contents = summary.spec.contents
            self._show_split_settings(shown)
            return
        self._on_scanned(folder, summary)
        if news:
            self.news.emit(news)

    def _on_scanned(self, folder: Path, summary: FolderDigest) -> None:
        self._digest = summary
        self.state.set_data(folder, summary.spec)
        self.folder_opened.emit(str(folder))
        self._render(summary.spec)

    def _render(self, spec: DatasetSpec | None) -> None:
        self.table.setRowCount(0)
        self.problems.set_lines([])
        self.notes.setText("")
        self.class_pick.clear()
        if spec is None:
            self.split_row.setVisible(False)
            self.summary.setText("Choose a folder, drop one here, or try the demo data.")
            self.grid.thumbs.set_paths([])
            return
        summary = self._digest if self._digest is not None and self._digest.spec is spec else digest(spec)
        self._digest = summary
        train, val = summary.train, summary.val
        total = sum(train.values()) + sum(val.values())
        split = ("your train/ and val/ folders" if spec.split_source == "folders"
                 else f"{round(100 * len(spec.val) / max(total, 1))}% held out for validation")
        kind = "sound clips" if spec.modality == "audio" else "images"
        excluded = self.state.excluded()
        left_out = sum(path in summary.every_path for path in excluded)
        what = (f"regression on “{spec.classes[0]}” (labels.csv), {total} {kind}" if spec.regression
                else f"{len(spec.classes)} classes, {total} {kind}")
        self._show_split_settings(spec)
        self.summary.setText(f"<b>{what}</b>: "
                             f"{len(spec.train)} to train, {len(spec.val)} to validate ({split})."
                             + (f" Training values {spec.target['min']:.4g} to {spec.target['max']:.4g}, mean "
                                f"{spec.target['mean']:.4g}." if spec.regression else "")
                             + (f" {left_out} file(s) left out by you." if left_out else ""))
        self.split_label.setText(grouping_line(spec))
        rows = summary.rows
        self.table.setRowCount(len(rows))
        largest = max((train[c] + val[c] for c in rows), default=1)
        for row, name in enumerate(rows):
            count = train[name] + val[name]
            share = f"{100 * count / max(total, 1):.0f}%"
            for col, text in ((0, name), (1, str(count)), (2, share), (3, f"{train[name]} / {val[name]}")):
                item = QTableWidgetItem(text)
                if col:
                    item.setTextAlignment(Qt.AlignmentFlag.AlignCenter)
                else:
                    item.setToolTip(name)
                self.table.setItem(row, col, item)
            self.table.item(row, 2).setData(ShareBar.FRACTION, count / max(largest, 1))
            self.class_pick.addItem(f"{name} ({count})", name)
        root = spec.root
        self.notes.setText("\n".join(summary.notes))
        self.notes.setVisible(bool(summary.notes))
        lines = list(summary.problems)
        lines += [f"✎ {relative(path, root)}: trained as “{label}”, relabelled by you"
                  for path, label in sorted(self.state.relabelled().items())]
        lines += [f"✂ {relative(path, root)}: left out of training by you (right-click it to use it again)"
                  for path in sorted(excluded)]
        if not lines:
            lines.append("✓ Every file can be read." if summary.notes else "✓ No problems found.")
        self.problems.set_lines(lines)

    def _class_selected(self) -> None:
        rows = {index.row() for index in self.table.selectedIndexes()}
        if rows:
            self.class_pick.setCurrentIndex(min(rows))

    def _show_class(self, index: int) -> None:
        spec = self.state.spec
        if spec is None or index < 0:
            return
        if self._digest is None or self._digest.spec is not spec:
            self._digest = digest(spec)
        paths = self._digest.paths.get(self.class_pick.itemData(index), [])
        sound = spec.modality == "audio"
        self.grid.setVisible(not sound)
        self.audio_panel.setVisible(sound)
        self.pick_label.setText("<b>Clips of</b>" if sound else "<b>Thumbnails of</b>")
        if sound:
            self._clip_paths = {os.path.basename(p): p for p in paths}
            self.clips.set_lines(list(self._clip_paths))
            if paths:
                self.clips.setCurrentRow(0)
        else:
            left_out = self.state.excluded()
            self.grid.thumbs.set_paths(paths, [("✂ left out · " if p in left_out else "") + os.path.basename(p)
                                               for p in paths])

    # -- leaving files out -------------------------------------------------------------------------------
    def _toggle_menu(self, path: str, global_pos) -> None:
        menu = QMenu(self)
        if path in self.state.excluded():
            menu.addAction("Use this file in training again", lambda: self.state.set_excluded(path, False))
        else:
            menu.addAction("Leave this file out of training", lambda: self.state.set_excluded(path, True))
        menu.popup(global_pos)
        self._popup = menu

    def _thumb_menu(self, position) -> None:
        index = self.grid.indexAt(position)
        if index.isValid():
            self._toggle_menu(self.grid.thumbs.paths[index.row()], self.grid.viewport().mapToGlobal(position))

    def _clip_menu(self, position) -> None:
        name = self.clips.text_at(position)
        path = getattr(self, "_clip_paths", {}).get(name) if name else None
        if path:
            self._toggle_menu(path, self.clips.viewport().mapToGlobal(position))

    def _excluded_changed(self) -> None:
        if self.state.spec is not None:
            index = self.class_pick.currentIndex()
            self._render(self.state.spec)
            self.class_pick.setCurrentIndex(max(index, 0))

    def _clip_selected(self, name: str) -> None:
        path = getattr(self, "_clip_paths", {}).get(name)
        if path:
            self.audio.show_clip(path)
