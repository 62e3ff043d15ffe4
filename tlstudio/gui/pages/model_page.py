"""Step 2, Model: backbone, weights, how deep to fine-tune, schedule and settings; all explained in place.

The settings' widgets are bound to TrainConfig's fields (gui/binder.py): their words, ranges and steps come
from the fields' metadata, so the page offers exactly what a run accepts. New data of another kind brings
its own defaults (config.with_data_defaults) for whatever the user did not set by hand.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QComboBox,
    QDoubleSpinBox,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QPushButton,
    QSlider,
    QSpinBox,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from tlstudio.core.errors import StudioError
from tlstudio.core.training.config import field_meta, setting_names, with_data_defaults
from tlstudio.gui.binder import SettingsBinder
from tlstudio.gui.pages.model_catalogue import (
    block_info,
    catalogue_rows,
    chosen_device,
    describe,
    detect_devices,
    device_choice,
)
from tlstudio.gui.pages.model_probes import ModelProbes
from tlstudio.gui.state import StudioState
from tlstudio.gui.style import GOOD_GREEN, WARNING_RED
from tlstudio.gui.tasks import Task
from tlstudio.gui.widgets.number_boxes import BigIntEdit, CompactSpinBox
from tlstudio.gui.widgets.page_area import show_rows
from tlstudio.gui.widgets.weights_panel import WeightsPanel

log = logging.getLogger(__name__)


def _depth_wanted(unfreeze: str) -> int:
    depth = unfreeze.strip().lower()
    return 10**6 if depth in ("all", "full") else (int(depth) if depth.lstrip("-").isdigit() else 0)


class ModelPage(ModelProbes, QWidget):
    error = Signal(str, str)
    start_requested = Signal()
    readiness_changed = Signal()  # the chosen backbone's weights arrived or went missing

    def __init__(self, state: StudioState, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.state = state
        self.rows: list[dict[str, Any]] = []
        self.blocks: dict[tuple[str, int, str], dict[str, Any]] = {}
        self.tasks: list[Task] = []
        self._wanted_depth: int | None = None
        self._wanted_device = "auto"
        self._data_kind: str | None = None  # the kind of data the settings were last fitted to
        self._keep_settings = False  # a project's settings were just applied: its data keeps them
        self._project_settings = False  # the settings are a project's (kept for data of the same kind)
        self._chosen: set[str] = set()  # settings the user set by hand (since the last project was opened)
        self._by_page = False  # the page itself is changing widgets: nothing is the user's choice
        self.settings = SettingsBinder(self, state)  # live: edits go into state.config as they are made
        self.settings.edited.connect(lambda name: self._chosen.add(name))

        self.table = QTableWidget(0, 6)
        self.table.setHorizontalHeaderLabels(["Backbone", "Parameters", "Input", "ImageNet top-1", "Relative speed",
                                              "Weights"])
        self.table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        self.table.horizontalHeader().setStretchLastSection(True)
        self.table.verticalHeader().setVisible(False)
        show_rows(self.table, 3)  # at a small window the page scrolls, the table keeps 3 rows
        self.table.horizontalHeaderItem(1).setToolTip(
            "As published: with the 1,000-class ImageNet classifier, which your new head replaces (the count "
            "under the slider is your model's).")
        self.table.setSelectionBehavior(QTableWidget.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QTableWidget.SelectionMode.SingleSelection)
        self.table.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
        self.table.setToolTip(field_meta("backbone")["tooltip"])
        self.table.itemSelectionChanged.connect(self._row_picked)
        self.about = QLabel("Loading the catalogue…")
        self.about.setWordWrap(True)
        self.weights = WeightsPanel()
        self.weights.arrived.connect(self._weights_arrived)
        self.weights.error.connect(self.error)
        self.import_button = self.weights.import_button

        self.depth = QSlider(Qt.Orientation.Horizontal)
        self.depth.setToolTip(field_meta("unfreeze")["tooltip"])
        self.depth.setRange(0, 0)
        self.depth.setTickPosition(QSlider.TickPosition.TicksBelow)
        self.depth.valueChanged.connect(self._depth_moved)
        self.depth_label = QLabel("")
        self.depth_label.setWordWrap(True)
        self.block_list = QLabel("")
        self.block_list.setWordWrap(True)
        self.block_list.setTextFormat(Qt.TextFormat.RichText)

        # the settings: every widget's range, step and words come from its field (core/training/config.py)
        bind = self.settings.add_row
        form = QFormLayout()
        self.schedule = bind(form, QComboBox(), "schedule")
        self.epochs = bind(form, QSpinBox(), "epochs")
        self.batch = bind(form, QSpinBox(), "batch_size")
        self.lr = CompactSpinBox()
        self.lr_find = QPushButton("Find…")
        self.lr_find.setToolTip("A range test (fastai's lr_find): trains briefly with a growing learning rate and "
                                "suggests one for the settings above. About a minute on a CPU for fine-tuning.")
        self.lr_find.clicked.connect(lambda: self.find_learning_rate())
        lr_box = QWidget()
        lr_row = QHBoxLayout(lr_box)
        lr_row.setContentsMargins(0, 0, 0, 0)
        lr_row.addWidget(self.lr, 1)
        lr_row.addWidget(self.lr_find)
        bind(form, self.lr, "lr", shown=lr_box)
        self.augment = bind(form, QComboBox(), "augment")
        self.device = QComboBox()
        self.device.addItem("Automatic (best available)", "auto")
        self.device.setToolTip(field_meta("device")["tooltip"])
        form.addRow(field_meta("device")["label"], self.device)

        self.advanced = QGroupBox("Advanced")
        self.advanced.setCheckable(True)
        self.advanced.setChecked(False)
        # the fields live in one container that folds; showing "every child" would also show a combo
        # box's hidden popup as a stray window (and swallow the next click)
        self.advanced_body = QWidget(self.advanced)
        advanced_form = QFormLayout(self.advanced_body)
        advanced_form.setContentsMargins(0, 0, 0, 0)
        QVBoxLayout(self.advanced).addWidget(self.advanced_body)
        self.bb_factor = bind(advanced_form, QDoubleSpinBox(), "backbone_lr_factor")
        self.warmup = bind(advanced_form, QSpinBox(), "warmup_epochs")
        self.accumulate = bind(advanced_form, QSpinBox(), "accumulate")
        self.head = bind(advanced_form, QComboBox(), "head")
        self.weight_decay = bind(advanced_form, CompactSpinBox(), "weight_decay")
        self.label_smoothing = bind(advanced_form, QDoubleSpinBox(), "label_smoothing")
        self.window = bind(advanced_form, QDoubleSpinBox(), "window_seconds")
        self.seed = bind(advanced_form, BigIntEdit(), "seed")  # up to 2**63 - 1: more than a QSpinBox holds
        self.settings.show(state.config)
        self.advanced.toggled.connect(self._fold_advanced)
        self._fold_advanced(False)

        self.start = QPushButton("Train  ▶")
        self.start.setObjectName("primary")
        self.start.clicked.connect(lambda: self.start_requested.emit())
        self.start_reason = QLabel("")
        self.start_reason.setWordWrap(True)

        depth_box = QGroupBox("How much of the network learns")
        depth_layout = QVBoxLayout(depth_box)
        ends = QHBoxLayout()
        ends.addWidget(QLabel("Feature extraction"))
        ends.addStretch(1)
        ends.addWidget(QLabel("Full fine-tuning"))
        self.recommend_button = QPushButton("Recommend")
        self.recommend_button.setToolTip("A quick probe on a subset of your files (a linear probe against a short "
                                         "fine-tune, a minute or two on a CPU) suggests the depth and schedule, "
                                         "and says why.")
        self.recommend_button.clicked.connect(lambda: self.recommend())
        self.advice = QLabel("")
        self.advice.setWordWrap(True)
        depth_row = QHBoxLayout()
        depth_row.addWidget(self.depth, 1)
        depth_row.addWidget(self.recommend_button)
        depth_layout.addLayout(depth_row)
        depth_layout.addLayout(ends)
        depth_layout.addWidget(self.advice)
        depth_layout.addWidget(self.depth_label)
        depth_layout.addWidget(self.block_list)
        settings = QHBoxLayout()
        left = QVBoxLayout()
        left.addLayout(form)
        left.addStretch(1)
        settings.addLayout(left, 1)
        settings.addWidget(self.advanced, 1)
        layout = QVBoxLayout(self)
        layout.addWidget(QLabel("<h2>2 · Model</h2>"))
        layout.addWidget(self.table, 3)
        layout.addWidget(self.about)
        layout.addWidget(self.weights)
        layout.addWidget(depth_box)
        layout.addLayout(settings)
        bottom = QHBoxLayout()
        bottom.addWidget(self.start_reason, 1)
        bottom.addWidget(self.start)
        layout.addLayout(bottom)
        self.settings.set_kind(None)

        self._run(catalogue_rows, self._fill_catalogue)
        self._run(detect_devices, self._fill_devices)
        state.data_changed.connect(lambda _spec: (self._show_rows_for_data(), self._follow_data_kind(),
                                                  self._backbone_changed()))
        self.head.currentIndexChanged.connect(lambda _i: self._backbone_changed())

    # -- background helpers ---------------------------------------------------------------------------
    def _run(self, work, on_done) -> Task:
        task = Task(work)
        task.finished.connect(on_done)
        task.failed.connect(self.error)
        task.done.connect(lambda: self.tasks.remove(task) if task in self.tasks else None)
        self.tasks.append(task)
        return task.start()

    @contextmanager
    def _by_the_page(self) -> Iterator[None]:
        """Changes made inside are the page's (defaults, a project's settings), not the user's choices."""
        before, self._by_page = self._by_page, True
        try:
            yield
        finally:
            self._by_page = before

    def _fold_advanced(self, on: bool) -> None:
        self.advanced_body.setVisible(on)
        self.advanced.setFlat(not on)
        self.advanced.setMaximumHeight(16777215 if on else 28)
        # folded, only its check box and title show: an empty frame read as a missing panel
        self.advanced.setStyleSheet("" if on else "QGroupBox { border: none; }")

    def _fill_catalogue(self, rows: list[dict[str, Any]]) -> None:
        self.rows = rows
        fastest = min(r["gflops"] for r in rows if r["gflops"])
        self.table.setRowCount(len(rows))
        for i, row in enumerate(rows):
            image = row["modality"] == "image"
            # by the work per input (YAMNet: per 0.96 s patch); an encoder without a count is a slow one
            speed = fastest / row["gflops"] if row["gflops"] else fastest / 20.0
            cells = [row["name"], f"{row['params'] / 1e6:.1f} M",
                     f"{row['input_size']} px" if image else str(row["input_size"]),
                     f"{row['imagenet_top1']:.1f} %" if image else "– (sound)",
                     "●" * max(1, min(5, round(5 * speed ** 0.35))),
                     "✓ on this computer" if row["cached"] else f"download {row['file_mb']:.0f} MB"]
            for col, text in enumerate(cells):
                item = QTableWidgetItem(text)
                item.setToolTip(row["summary"])
                self.table.setItem(i, col, item)
        self._show_rows_for_data()
        self._follow_data_kind()
        names = [r["name"] for r in rows]
        with self._by_the_page():
            self.table.selectRow(names.index(self.state.config.backbone) if self.state.config.backbone in names
                                 else 0)

    def _follow_data_kind(self) -> None:
        """New data gets its kind's defaults (config.with_data_defaults: the measured backbone and depth, sound
        also by clip length) for what the user did not set by hand. Data of another kind resets every such
        setting (photo settings never carry over to sound); data of the same kind changes only a backbone and
        depth that were the page's own. A project's settings stay for its own data and data of its kind; a
        backbone that does not fit the data (a sound encoder for pictures) never stays."""
        spec = self.state.spec
        self.settings.set_kind(spec.modality if spec is not None else None)
        names = [r["name"] for r in self.rows]
        if spec is None or not names:
            return  # again once the catalogue is read
        new_kind, self._data_kind = spec.modality != self._data_kind, spec.modality
        keep, self._keep_settings = self._keep_settings, False
        config = self._settled()
        row = self.rows[names.index(config.backbone)] if config.backbone in names else None
        fits = row is not None and (row["modality"] == "image" or spec.modality == "audio")
        if keep and fits:
            return
        given = set(setting_names()) if keep or (self._project_settings and not new_kind) else set(self._chosen)
        if not fits:
            given -= {"backbone", "unfreeze"}
        if new_kind and not keep:
            self._project_settings = False
        try:
            resolved = with_data_defaults(config, spec.modality, given, spec.clip_seconds, new_kind=new_kind)
        except StudioError as exc:  # settings a project file brought that do not validate: left as they are
            log.warning("the settings do not follow the data: %s", exc.message)
            return
        if resolved is config or resolved.backbone not in names:
            return
        for key, value in resolved.to_dict().items():
            setattr(config, key, value)
        with self._by_the_page():
            self.state.settings_changed.emit("")  # every page that shows a setting shows its new value
            self._wanted_depth = _depth_wanted(config.unfreeze)
            self.table.selectRow(names.index(config.backbone))
            self._apply_wanted_depth()

    def _show_rows_for_data(self) -> None:
        """Sound encoders only appear for sound folders; image backbones serve both (via spectrograms)."""
        sound = self.state.spec is not None and self.state.spec.modality == "audio"
        for i, row in enumerate(self.rows):
            self.table.setRowHidden(i, row["modality"] == "audio" and not sound)

    def _fill_devices(self, devices: list[tuple[str, str]]) -> None:
        for device_id, text in devices:
            self.device.addItem(text, device_id)
        wanted = self.device.findData(self._wanted_device)
        if wanted >= 0:
            self.device.setCurrentIndex(wanted)

    def selected_row(self) -> dict[str, Any] | None:
        rows = {index.row() for index in self.table.selectedIndexes()}
        return self.rows[min(rows)] if rows and self.rows else None

    # -- backbone, weights, depth ---------------------------------------------------------------------
    def _row_picked(self) -> None:
        if not self._by_page:
            self._chosen.add("backbone")
        self._backbone_changed()

    def _backbone_changed(self) -> None:
        row = self.selected_row()
        if row is None:
            return
        self.state.config.backbone = row["name"]
        self.about.setText(describe(row, self.state.spec is not None and self.state.spec.modality == "audio"))
        self.weights.show_row(row)
        self._show_readiness()
        num_classes = len(self.state.spec.classes) if self.state.spec else 2
        key = (row["name"], num_classes, self.head.currentData())
        if key in self.blocks:
            self._show_blocks(key)
        else:
            self.depth_label.setText("Reading the network's blocks…")
            self._run(lambda _p, _c: block_info(*key), lambda info, key=key: self._blocks_ready(key, info))

    def readiness(self) -> tuple[bool, str]:
        """Can Train start with this backbone? (pretrained weights must be on this computer)."""
        row = self.selected_row()
        if row is None or row.get("cached") or self.state.config.pretrained != "imagenet":
            return True, ""
        return False, (f"Train is off: the pretrained weights of {row['name']} are not on this computer. "
                       "Download them, or press “Import a weights file…” (works offline).")

    def set_can_start(self, enabled: bool, reason: str = "") -> None:
        """Train ▶ on or off (the window decides: data open, nothing training, weights here), and why."""
        self.start.setEnabled(enabled)
        self.start.setToolTip("" if enabled else reason)

    def _show_readiness(self) -> None:
        ready, reason = self.readiness()
        self.start_reason.setText("" if ready else f"<span style='color:{WARNING_RED}'>{reason}</span>")
        self.readiness_changed.emit()

    def apply_config(self, config) -> None:
        """A project's settings into every field of this page (and the backbone row and depth)."""
        self._keep_settings = True  # the data that comes next is the project's: its backbone stays
        self._project_settings = True
        self._chosen.clear()
        backbone, self._wanted_depth = config.backbone, _depth_wanted(config.unfreeze)
        with self._by_the_page():
            self.state.settings_changed.emit("")  # the project's settings, on every page that shows them
            self._wanted_device = device_choice(config.device, config.devices)
            if self.device.findData(self._wanted_device) >= 0:
                self.device.setCurrentIndex(self.device.findData(self._wanted_device))
            config.backbone = backbone  # (a head shown above re-read the row still selected)
            names = [r["name"] for r in self.rows]
            if backbone in names:
                self.table.selectRow(names.index(backbone))
            self._apply_wanted_depth()

    def _apply_wanted_depth(self) -> None:
        info = getattr(self, "_current_blocks", None)
        row = self.selected_row()
        if self._wanted_depth is None or info is None or row is None or row["name"] != self.state.config.backbone \
                or getattr(self, "_current_key", ("",))[0] != row["name"]:
            return
        with self._by_the_page():
            self.depth.setValue(min(self._wanted_depth, len(info["labels"])))
        self._depth_changed(self.depth.value())
        self._wanted_depth = None

    def _blocks_ready(self, key: tuple[str, int, str], info: dict[str, Any]) -> None:
        self.blocks[key] = info
        row = self.selected_row()
        if row and row["name"] == key[0]:
            self._show_blocks(key)

    def _show_blocks(self, key: tuple[str, int, str]) -> None:
        info = self.blocks[key]
        self._current_blocks = info
        self._current_key = key
        self.depth.blockSignals(True)
        self.depth.setRange(0, len(info["labels"]))
        self.depth.blockSignals(False)
        self._depth_changed(self.depth.value())
        self._apply_wanted_depth()

    def _depth_moved(self, k: int) -> None:
        if not self._by_page:
            self._chosen.add("unfreeze")
        self._depth_changed(k)
        self._advice_still_set()

    def _depth_changed(self, k: int) -> None:
        info = getattr(self, "_current_blocks", None)
        if info is None:
            return
        labels, sizes = info["labels"], info["sizes"]
        n = len(labels)
        trainable = info["head"] + sum(sizes[n - k:]) if k else info["head"]
        share = 100 * trainable / info["total"]
        if k == 0:
            what = "Feature extraction: only the new head trains (fast: each image goes through the network once)."
        elif k == n:
            what = "Full fine-tuning: every block trains, at a lower learning rate than the head."
        else:
            what = f"Fine-tuning the top {k} of {n} blocks plus the new head; the rest stay frozen."
        self.depth_label.setText(f"{what}<br><b>{trainable:,} of {info['total']:,} parameters train "
                                 f"({share:.1f}%).</b>")
        chips = [f"<span style='color:{GOOD_GREEN if i >= n - k else '#888'}'>"
                 f"{'●' if i >= n - k else '○'}&nbsp;{label}</span>" for i, label in enumerate(labels)]  # a line
        # break never parts a dot from its block's name
        self.block_list.setText(" &nbsp; ".join(chips) + f" &nbsp; <span style='color:{GOOD_GREEN}'>●&nbsp;new&nbsp;"
                                "head</span>")
        self.state.config.unfreeze = str(k)

    def _weights_arrived(self, name: str) -> None:
        for row in self.rows:
            if row["name"] == name:
                row["cached"] = True
                self.table.item(self.rows.index(row), 5).setText("✓ on this computer")
        self._backbone_changed()

    # -- the config the Train page uses ---------------------------------------------------------------
    def _settled(self):
        """state.config, where the bound settings already are (the binder writes each edit at once), with
        the warm-up shortened to fit the epochs."""
        config = self.state.config
        fitting = min(config.warmup_epochs, max(1, config.epochs - 1))
        if fitting != config.warmup_epochs:
            config.warmup_epochs = fitting
            self.state.settings_changed.emit("warmup_epochs")
        return config

    def collect(self) -> None:
        """The page's own settings (device, depth) into state.config too: before a run or a probe, and when a
        project is saved."""
        config = self._settled()
        config.device, config.devices = chosen_device(self.device.currentData())
        config.unfreeze = str(self.depth.value())
