"""Step 5, Try & export: drop files to see top-3 predictions with confidence bars; export the model."""

from __future__ import annotations

import html
import re
from pathlib import Path

from PySide6.QtCore import Qt, QUrl, Signal
from PySide6.QtGui import QDesktopServices, QDragEnterEvent, QDropEvent, QPixmap
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QFileDialog,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QScrollArea,
    QSlider,
    QVBoxLayout,
    QWidget,
)

from tlstudio.gui.data_digest import problem_summary
from tlstudio.gui.settings import settings
from tlstudio.gui.state import StudioState
from tlstudio.gui.style import WARNING_RED
from tlstudio.gui.tasks import Task
from tlstudio.gui.widgets.contrast_bar import ContrastBar
from tlstudio.gui.widgets.pixmaps import array_pixmap
from tlstudio.gui.widgets.task_progress import TaskProgress

PREDICT_CHUNK = 32  # files predicted between two looks at Cancel
DEFAULT_MIN_CONFIDENCE = 60  # percent: below it a card says "not sure" rather than a bold answer


CLASS_LABEL_WIDTH = 180  # pixels: a class name beside its bar (longer ones elided in the middle, whole in a tip)


def breakable(text: str) -> str:
    """Text a label may wrap anywhere a path or a reason can break: after / \\ _ . - (zero-width spaces)."""
    return re.sub(r"([/\\_.\-:])", "\\1\u200b", text)


class PredictionCard(QWidget):
    def __init__(self, prediction, min_confidence: float = 0.0, parent: QWidget | None = None,
                 value_name: str = "value") -> None:
        super().__init__(parent)
        layout = QHBoxLayout(self)
        picture = QLabel()
        picture.setAlignment(Qt.AlignmentFlag.AlignCenter)
        pixmap = QPixmap(prediction.path)
        if not pixmap.isNull():
            picture.setPixmap(pixmap.scaled(96, 96, Qt.AspectRatioMode.KeepAspectRatio,
                                            Qt.TransformationMode.SmoothTransformation))
        else:  # a sound clip (or a file that is not a picture)
            picture.setText("♪" if Path(prediction.path).suffix.lower() in (".wav", ".flac", ".ogg", ".mp3")
                            else "?")
            picture.setStyleSheet("font-size: 40px; border: 1px solid palette(mid); border-radius: 6px;")
        picture.setFixedSize(100, 100)
        self.picture = picture
        self.path = prediction.path
        layout.addWidget(picture)
        column = QVBoxLayout()
        name = QLabel(f"<b>{html.escape(breakable(Path(prediction.path).name))}</b>")
        name.setWordWrap(True)
        name.setToolTip(prediction.path)
        column.addWidget(name)
        self.verdict = prediction.verdict(min_confidence)
        if prediction.value is not None:  # a regression: the number, and a warning when the input is unfamiliar
            text = f"<b>{html.escape(value_name)}: {prediction.value:.4g}</b>"
            if prediction.unfamiliar:
                text += (f"<br><span style='color:{WARNING_RED}'><b>Not sure</b>: this is unlike every training "
                         "file, so the number may mean nothing.</span>")
            verdict = QLabel(text)
            verdict.setWordWrap(True)
            column.addWidget(verdict)
        elif prediction.top:
            if self.verdict == "unknown" and prediction.unfamiliar:
                name, share = prediction.top[0]
                # a confident class on an unfamiliar file is said as both (a real leaf seen from below read
                # "probably none of these classes" beside a 99.5% bar)
                text = (f"<span style='color:{WARNING_RED}'><b>Not sure</b>: this file is unlike every training "
                        f"file, so the answer may not hold. Best guess: {html.escape(name)} ({share:.1%}); the bars "
                        "share 100% among the known classes only.</span>")
            elif self.verdict == "unknown":
                text = (f"<span style='color:{WARNING_RED}'><b>Not sure</b>: the best guess, "
                        f"{prediction.top[0][0]}, is below {min_confidence:.0%}. It may be none of these "
                        "classes.</span>")
            else:
                text = f"<b>{self.verdict}</b>"
            verdict = QLabel(text)
            verdict.setWordWrap(True)
            column.addWidget(verdict)
        if prediction.error:
            error = QLabel(f"Could not use this file: {breakable(prediction.error)}")
            error.setWordWrap(True)  # one long reason must not widen the list (and cut every bar off)
            column.addWidget(error)
        for name, probability in prediction.top:
            row = QHBoxLayout()
            label = QLabel()
            label.setFixedWidth(CLASS_LABEL_WIDTH)  # every card's bars start at one edge, so they compare by eye
            label.setText(label.fontMetrics().elidedText(name, Qt.TextElideMode.ElideMiddle, CLASS_LABEL_WIDTH - 6))
            label.setToolTip(name)
            bar = ContrastBar()
            bar.setRange(0, 1000)
            bar.setValue(round(probability * 1000))
            bar.setFormat(f"{probability:.1%}")
            row.addWidget(label)
            row.addWidget(bar, 1)
            column.addLayout(row)
        layout.addLayout(column, 1)


    def show_heat_map(self, pixels) -> None:
        """Replace the thumbnail with the picture the network sees, the heat map over it."""
        self.picture.setStyleSheet("")
        self.picture.setPixmap(array_pixmap(pixels).scaled(
            self.picture.size(), Qt.AspectRatioMode.KeepAspectRatio, Qt.TransformationMode.SmoothTransformation))
        self.heat_shown = True


class TryPage(QWidget):
    error = Signal(str, str)
    predicted = Signal(list)
    exported = Signal(str)
    explained = Signal(int)  # heat maps shown on this many cards

    def __init__(self, state: StudioState, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.state = state
        self.task: Task | None = None
        self.setAcceptDrops(True)
        self.hint = QLabel("Drop image or sound files, or a folder, here, or choose them, to see what the model says.")
        self.hint.setWordWrap(True)
        self.choose = QPushButton("Choose files…")
        self.choose.clicked.connect(self._choose)
        self.export_format = QComboBox()
        self.export_format.addItem("TorchScript (PyTorch, no studio needed)", "torchscript")
        self.export_format.addItem("ONNX (ONNX Runtime, any language)", "onnx")
        self.export_format.addItem("Checkpoint (the studio's weights)", "checkpoint")
        self.export_format.setToolTip("Every format includes the preprocessing (resizing and normalising, or the "
                                      "spectrogram for sound), class names in model.json, and a predict.py example.")
        self.export_button = QPushButton("Export…")
        self.export_button.clicked.connect(self._export)
        self.progress = TaskProgress()  # files done, time left, and Cancel (predictions and exports)
        self.open_export = QPushButton("Open folder")
        self.open_export.setToolTip("Show the exported model's folder in the file manager.")
        self.open_export.setVisible(False)
        self.open_export.clicked.connect(self._open_export_folder)
        self.export_path: Path | None = None
        self.predictions: list = []
        self.threshold = QSlider(Qt.Orientation.Horizontal)
        self.threshold.setRange(0, 99)
        self.threshold.setValue(int(settings().value("try/min_confidence", DEFAULT_MIN_CONFIDENCE)))
        self.threshold.setMaximumWidth(220)
        self.threshold.setTracking(False)  # cards are redrawn when the slider is let go, not on every step
        self.threshold.setToolTip("Below this calibrated confidence a file is called 'not sure' (tlstudio predict "
                                  "--min-confidence). It catches doubtful inputs, not every input unlike the "
                                  "training files: see the README.")
        self.threshold_label = QLabel()
        self.heat = QCheckBox("Show what the model looks at")
        self.heat.setToolTip("A heat map over each picture (Grad-CAM, or occlusion for transformers) or over the "
                             "spectrogram of each clip: bright is what decided the answer. Also: tlstudio explain.")
        self.heat.toggled.connect(lambda on: self._explain_shown() if on else self._render())
        self.heat_task: Task | None = None
        self.heat_maps: dict = {}  # path -> overlay, for the current model
        self.threshold.valueChanged.connect(self._threshold_changed)
        self._threshold_changed(self.threshold.value(), save=False)
        self.cards = QWidget()
        self.cards_layout = QVBoxLayout(self.cards)
        self.empty_hint = QLabel("Drop pictures, sound clips or a folder here\n(or press “Choose files…”)")
        self.empty_hint.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.empty_hint.setObjectName("hint")
        self.empty_hint.setStyleSheet("color: palette(mid); font-size: 15px; padding: 40px; "
                                      "border: 2px dashed palette(mid); border-radius: 10px;")
        self.problems = QLabel("")  # the unusable files counted by reason, above their cards
        self.problems.setWordWrap(True)
        self.problems.setVisible(False)
        self.cards_layout.addWidget(self.problems)
        self.cards_layout.addWidget(self.empty_hint)
        self.cards_layout.addStretch(1)
        scroll = QScrollArea()
        scroll.setWidgetResizable(True)
        scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)  # cards wrap to the width
        scroll.setWidget(self.cards)
        row = QHBoxLayout()
        row.addWidget(self.choose)
        row.addWidget(self.export_format)
        row.addWidget(self.export_button)
        row.addWidget(self.open_export)
        row.addWidget(self.progress, 1)
        layout = QVBoxLayout(self)
        layout.addWidget(QLabel("<h2>5 · Try &amp; export</h2>"))
        layout.addWidget(self.hint)
        layout.addLayout(row)
        threshold_row = QHBoxLayout()
        threshold_row.addWidget(self.threshold_label)
        threshold_row.addWidget(self.threshold)
        threshold_row.addSpacing(24)
        threshold_row.addWidget(self.heat)
        threshold_row.addStretch(1)
        layout.addLayout(threshold_row)
        layout.addWidget(scroll, 1)
        state.run_changed.connect(self._run_changed)
        self._run_changed(state.run_dir)

    def _run_changed(self, run_dir) -> None:
        """Another model: the old model's predictions go (never shown under the new model's name)."""
        if run_dir == getattr(self, "_shown_run", object()):
            return
        self._shown_run = run_dir
        self.clear()
        ready = run_dir is not None and (Path(run_dir) / "model.pt").is_file()
        self.export_button.setEnabled(ready)
        if ready:
            self.hint.setText(f"Model: {Path(run_dir).name}. Drop files or a folder here, or choose them.")
        else:
            self.hint.setText("No model yet: train one, or choose one on the Compare page (Use this run).")

    def clear(self) -> None:
        if self.task is not None:
            self.task.drop()
            self.task = None
        if self.heat_task is not None:
            self.heat_task.drop()
            self.heat_task = None
        self.heat_maps = {}
        self._remove_cards()
        self.predictions = []
        self.empty_hint.setVisible(True)
        self.open_export.setVisible(False)

    def _remove_cards(self) -> None:
        for i in reversed(range(self.cards_layout.count())):
            widget = self.cards_layout.itemAt(i).widget()
            if isinstance(widget, PredictionCard):
                self.cards_layout.takeAt(i)
                widget.hide()
                widget.setParent(None)
                widget.deleteLater()

    def card_count(self) -> int:
        return sum(isinstance(self.cards_layout.itemAt(i).widget(), PredictionCard)
                   for i in range(self.cards_layout.count()))

    def _open_export_folder(self) -> None:
        if self.export_path is not None:
            QDesktopServices.openUrl(QUrl.fromLocalFile(str(self.export_path)))

    def _choose(self) -> None:
        files, _ = QFileDialog.getOpenFileNames(
            self, "Choose files", str(self.state.folder or Path.home()),
            "Images or sound (*.jpg *.jpeg *.png *.bmp *.gif *.webp *.tif *.tiff *.wav *.flac *.ogg *.mp3)")
        if files:
            self.predict(files)

    def dragEnterEvent(self, event: QDragEnterEvent) -> None:
        if event.mimeData().hasUrls():
            event.acceptProposedAction()

    def dropEvent(self, event: QDropEvent) -> None:
        self.predict([url.toLocalFile() for url in event.mimeData().urls() if url.isLocalFile()])

    def predict(self, paths: list[str]) -> Task | None:
        run_dir = self.state.run_dir
        if run_dir is None:
            self.error.emit("There is no trained model yet.", "Train one on the Train page first.")
            return None

        def work(progress, control):
            from tlstudio.core.inference.predict import Predictor, expand
            from tlstudio.core.store.runs import RunDir

            predictor = Predictor(RunDir.open(run_dir))
            files = expand(paths, predictor.modality)
            results: list = []
            for first in range(0, len(files), PREDICT_CHUNK):  # a stop keeps the files already predicted
                if control.cancelled:
                    break
                results += predictor.predict(files[first:first + PREDICT_CHUNK],
                                             progress=lambda done, _total, first=first: progress(first + done,
                                                                                                 len(files)))
            return results, predictor.classes[0] if predictor.regression else "value", len(files)

        if self.task is not None:
            self.task.drop()
        task = Task(work)
        task.finished.connect(self._predicted)
        task.failed.connect(self.error)
        self.progress.follow(task, "Predicting…")
        self.task = task.start()
        return self.task

    def min_confidence(self) -> float:
        return self.threshold.value() / 100

    def _threshold_changed(self, value: int, save: bool = True) -> None:
        self.threshold_label.setText(f"Say “not sure” below {value}% confidence" if value
                                     else "Always give the best class (no “not sure”)")
        if save:
            settings().setValue("try/min_confidence", value)
            if self.predictions:
                self._render()

    def _predicted(self, result: tuple) -> None:
        predictions, self.value_name, total = result  # the name a regression's number is shown under
        self._show(predictions)
        if len(predictions) < total:
            self.hint.setText(f"Stopped after {len(predictions)} of {total} files: their results are below; "
                              "choose the files again for the rest.")

    def _show(self, predictions: list) -> None:
        self.predictions = list(predictions)
        self._render()
        self.predicted.emit(predictions)

    def _render(self) -> None:
        self._remove_cards()
        self.empty_hint.setVisible(not self.predictions)
        summary = problem_summary([p.error for p in self.predictions if p.error])  # one line before 120 cards
        self.problems.setText(summary[0] if summary else "")
        self.problems.setVisible(bool(summary))
        for prediction in self.predictions[:200]:
            self.cards_layout.insertWidget(self.cards_layout.count() - 1,
                                           PredictionCard(prediction, self.min_confidence(),
                                                          value_name=getattr(self, "value_name", "value")))
        if self.heat.isChecked():
            self._explain_shown()

    def _explain_shown(self, limit: int = 24) -> Task | None:
        """Heat maps for the first cards, in the background; ones already made are reused."""
        run_dir = self.state.run_dir
        cached = [card for card in self.shown_cards() if card.path in self.heat_maps]
        for card in cached:
            card.show_heat_map(self.heat_maps[card.path])
        paths = [card.path for card in self.shown_cards()[:limit] if card.path not in self.heat_maps
                 and not any(p.path == card.path and p.error for p in self.predictions)]
        if cached and not paths:
            self.explained.emit(len(cached))
        if run_dir is None or not paths:
            return None

        def work(progress, control):
            from tlstudio.core.errors import StudioError
            from tlstudio.core.inference.saliency import Explainer, overlay
            from tlstudio.core.store.runs import RunDir

            explainer = Explainer(RunDir.open(run_dir))  # the model is loaded once for all the cards
            maps = {}
            for done, path in enumerate(paths):
                control.checkpoint()
                try:
                    maps[path] = overlay(explainer.explain(path))
                except (StudioError, RuntimeError, ValueError):  # that card keeps its thumbnail
                    continue
                progress(done + 1, len(paths))
            return maps

        if self.heat_task is not None:
            self.heat_task.drop()
        task = Task(work)
        task.finished.connect(self._show_heat_maps)
        task.failed.connect(self.error)
        self.heat_task = task.start()
        return self.heat_task

    def _show_heat_maps(self, maps: dict) -> None:
        self.heat_maps.update(maps)
        if not self.heat.isChecked():
            return
        for card in self.shown_cards():
            if card.path in maps:
                card.show_heat_map(maps[card.path])
        self.explained.emit(len(maps))

    def shown_cards(self) -> list[PredictionCard]:
        return [self.cards_layout.itemAt(i).widget() for i in range(self.cards_layout.count())
                if isinstance(self.cards_layout.itemAt(i).widget(), PredictionCard)]

    def _export(self) -> None:
        """Ask where, as a new folder's name (typed in, or proposed): the last place used, else Documents."""
        from PySide6.QtCore import QStandardPaths

        fmt = self.export_format.currentData()
        start = settings().value("export/last_dir", "") or \
            QStandardPaths.writableLocation(QStandardPaths.StandardLocation.DocumentsLocation) or str(Path.home())
        proposed = Path(start) / f"{Path(self.state.run_dir).name}-{fmt}"
        chosen, _ = QFileDialog.getSaveFileName(self, "Export the model as a folder named…", str(proposed),
                                                "A new folder (*)")
        if chosen:
            settings().setValue("export/last_dir", str(Path(chosen).parent))
            self.export_to(Path(chosen).parent, fmt, folder=Path(chosen))

    def export_to(self, target: Path, fmt: str | None = None, folder: Path | None = None) -> Task:
        """Export in the background (ONNX takes a while) into `folder` (made; by default `target/RUN-FORMAT`);
        the result and any error reach the page."""
        run_dir = Path(self.state.run_dir)
        fmt = fmt or self.export_format.currentData()
        out = folder or target / f"{run_dir.name}-{fmt}"

        def work(_progress, _control):
            from tlstudio.core.inference.export import export_run
            from tlstudio.core.store.runs import RunDir

            return export_run(RunDir.open(run_dir), fmt, out)

        self.hint.setText(f"Exporting {fmt}…")
        self.export_button.setEnabled(False)
        fresh = not out.exists()
        task = Task(work)
        task.finished.connect(self._exported)
        task.failed.connect(self.error)
        task.done.connect(lambda: self._export_ended(task, out if fresh else None))
        # an exporter cannot stop halfway: Cancel drops it, and what it wrote into its new folder goes at its end
        self.progress.follow(task, f"Exporting {fmt}…", on_cancel=task.drop)
        self.export_task = task.start()
        return self.export_task

    def _export_ended(self, task: Task, made: Path | None) -> None:
        self.export_button.setEnabled(True)
        if task.dropped:
            if made is not None and made.is_dir():
                import shutil

                shutil.rmtree(made, ignore_errors=True)
            self.hint.setText("Export cancelled: nothing was kept." if made is not None else
                              "Export cancelled; the folder chosen already existed, so it was left as it is.")

    def _exported(self, path) -> None:
        self.export_path = Path(path).parent if Path(path).is_file() else Path(path)
        self.hint.setText(f"Exported to {path} (with model.json and predict.py)")
        self.open_export.setVisible(True)
        self.exported.emit(str(path))
