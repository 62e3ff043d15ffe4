"""Step 4, Evaluate: accuracy, per-class metrics, the confusion matrix and the most confident mistakes."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QSize, Qt, Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QFileDialog,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QMenu,
    QPushButton,
    QSplitter,
    QStackedWidget,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from tlstudio.gui.advice import some_of
from tlstudio.gui.headlines import interval_text, num_text, r2_text, regression_headline, small_validation_note
from tlstudio.gui.state import StudioState
from tlstudio.gui.tasks import Task
from tlstudio.gui.widgets.audio_view import AudioView
from tlstudio.gui.widgets.confusion import ConfusionMatrix
from tlstudio.gui.widgets.line_list import LineList
from tlstudio.gui.widgets.page_area import show_rows
from tlstudio.gui.widgets.reliability import ReliabilityDiagram
from tlstudio.gui.widgets.task_progress import TaskProgress
from tlstudio.gui.widgets.thumbnails import ThumbnailGrid
from tlstudio.gui.widgets.value_scatter import ValueScatter
from tlstudio.gui.widgets.wrapped_label import WrappedLabel


class EvaluatePage(QWidget):
    error = Signal(str, str)
    evaluated = Signal(dict)
    map_requested = Signal()
    retrain_requested = Signal()

    def __init__(self, state: StudioState, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.state = state
        self.predictions: list[dict[str, str]] = []
        self.task: Task | None = None
        self.other = QPushButton("Evaluate on another folder…")
        self.other.setToolTip("A new folder with the same class names: see whether the model still holds up (drift).")
        self.other.clicked.connect(self._choose_other)
        self.again = QPushButton("Re-evaluate the validation files")
        self.again.clicked.connect(lambda: self.evaluate(None))
        self.tta = QCheckBox("Test-time augmentation")
        self.tta.setToolTip("Also score a mirrored image (or a time-shifted sound) and average; reported separately.")
        self.progress = TaskProgress()  # the files evaluated so far, the time left, and Cancel
        self.headline = QLabel("Train a model to see how good it is.")
        self.headline.setWordWrap(True)
        self.per_class = QTableWidget(0, 5)
        self.per_class.setHorizontalHeaderLabels(["Class", "Precision", "Recall", "F1", "Files"])
        self.per_class.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        self.per_class.horizontalHeader().setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        self.per_class.setTextElideMode(Qt.TextElideMode.ElideMiddle)  # a long class name: whole in its tooltip
        self.per_class.verticalHeader().setVisible(False)
        show_rows(self.per_class, 2)
        self.per_class.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
        self.per_class.setToolTip("Precision: of the files called this class, how many were right. "
                                  "Recall: of the files of this class, how many were found.")
        self.matrix = ConfusionMatrix()
        self.matrix.cell_chosen.connect(self.show_cell)
        self.cell_title = QLabel("<b>Most confident mistakes</b>")
        self.cell_title.setWordWrap(True)
        self.show_all = QPushButton("Show all mistakes")
        self.show_all.setVisible(False)
        self.show_all.clicked.connect(self.show_mistakes)
        self.map_button = QPushButton("Map of the files…")
        self.map_button.setToolTip("Every file placed by what the network sees in it: clusters, mistakes, outliers and "
                                   "files that look mislabelled; relabel or leave out, then retrain.")
        self.map_button.clicked.connect(self.map_requested)
        self.gallery = ThumbnailGrid(110)
        self.gallery.setGridSize(QSize(150, 110 + 48))  # room for a two-line caption under tall pictures
        self.gallery.setWordWrap(False)  # captions are two lines, each shortened to fit (_show)
        self.gallery.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        self.gallery.customContextMenuRequested.connect(self._gallery_menu)
        # sound runs: the same files as a list, with the waveform/spectrogram/play view below
        self.clip_list = LineList()  # a confusion cell of a large folder can hold thousands of clips
        self.clip_list.current_row_changed.connect(self._clip_chosen)
        self.clip_view = AudioView()
        sound_panel = QSplitter(Qt.Orientation.Vertical)
        sound_panel.addWidget(self.clip_list)
        sound_panel.addWidget(self.clip_view)
        self.samples_view = QStackedWidget()
        self.samples_view.addWidget(self.gallery)
        self.samples_view.addWidget(sound_panel)
        self.modality = "image"
        left = QWidget()
        left_layout = QVBoxLayout(left)
        left_layout.setContentsMargins(0, 0, 0, 0)
        left_layout.addWidget(self.per_class, 2)
        matrix_title = WrappedLabel("<b>Confusion matrix</b>: rows are the <b>true</b> class, columns what the model "
                              "<b>predicted</b>; click a cell to see its files")
        matrix_title.setWordWrap(True)
        left_layout.addWidget(matrix_title)
        left_layout.addWidget(self.matrix, 3)
        self.reliability = ReliabilityDiagram()
        self.reliability.setToolTip("For the files the model was, say, 80% sure of: how many it got right. "
                                    "Bars on the dashed diagonal mean its confidence can be taken at its word.")
        self.reliability.setMaximumHeight(230)  # beside the matrix, never squeezing its cells
        left_layout.addWidget(self.reliability)
        # a regression run: predicted against true values instead of the class tables
        self.scatter = ValueScatter()
        self.scatter.setToolTip("One dot per validation file; on the dashed diagonal the prediction is exact. "
                                "Click a dot to see its file.")
        self.scatter.point_chosen.connect(self.show_file)
        self.left = QStackedWidget()
        self.left.addWidget(left)
        self.left.addWidget(self.scatter)
        self.regression = False
        self.target_name = "value"
        right = QWidget()
        right_layout = QVBoxLayout(right)
        right_layout.setContentsMargins(0, 0, 0, 0)
        title_row = QHBoxLayout()  # the buttons on their own line: a narrow column kept the title to one word a line
        title_row.addStretch(1)
        title_row.addWidget(self.show_all)
        title_row.addWidget(self.map_button)
        right_layout.addLayout(title_row)
        right_layout.addWidget(self.cell_title)
        right_layout.addWidget(self.samples_view)
        splitter = QSplitter()
        splitter.addWidget(self.left)
        splitter.addWidget(right)
        splitter.setSizes([520, 460])
        layout = QVBoxLayout(self)
        layout.addWidget(QLabel("<h2>4 · Evaluate</h2>"))
        actions = QHBoxLayout()
        for widget in (self.again, self.other, self.tta):
            actions.addWidget(widget)
        actions.addStretch(1)  # the check box keeps its own width: a click beside its text toggles nothing
        actions.addWidget(self.progress, 2)
        layout.addLayout(actions)
        layout.addWidget(self.headline)
        layout.addWidget(splitter, 1)
        state.run_changed.connect(self.load_run)

    def apply_theme(self, dark: bool) -> None:
        self.reliability.apply_theme(dark)
        self.scatter.apply_theme(dark)

    def clear(self) -> None:
        """No active model (another folder was opened): nothing of the old run stays."""
        if self.task is not None:
            self.task.drop()
            self.task = None
        self._drop_explanation()
        self.headline.setText("Train a model, or choose one on the Compare page, to see how good it is.")
        self.per_class.setRowCount(0)
        self.matrix.set_matrix([], [])
        self.reliability.set_calibration(None)
        self.scatter.set_points([], [], [])
        self._set_regression(False)
        self.predictions = []
        self._show([])
        self.cell_title.setText("")
        self.show_all.setVisible(False)

    def load_run(self, run_dir: Path | None) -> None:
        from tlstudio.core.store.runs import RunDir

        if run_dir is None or not RunDir(Path(run_dir)).has_results:
            self.clear()
            return
        if self.task is not None:  # an evaluation of the previous model must not land on this one
            self.task.drop()
            self.task = None
        self._drop_explanation()
        run_dir = Path(run_dir)
        run = RunDir(run_dir)
        metrics = run.read_json_or("metrics.json")
        if metrics is None:
            self.clear()
            return
        self.modality = run.read_json_or("labels.json", {}).get("modality", "image")
        self.samples_view.setCurrentIndex(1 if self.modality == "audio" else 0)
        from tlstudio.core.store.runs import RunDir

        if metrics.get("task") == "regression":
            self._set_regression(True, (metrics.get("target") or {}).get("name", "value"))
            self.headline.setText(regression_headline(metrics))
            self.predictions = RunDir(run_dir).read_table("predictions.tsv")
            self._fill_scatter()
            self.show_mistakes()
            return
        self._set_regression(False)
        classes = metrics["classes"]
        self.headline.setText(
            f"<b>Validation accuracy {metrics['val_accuracy']:.1%}</b>{interval_text(metrics)} on "
            f"{metrics['sizes']['val']} files · "
            f"macro F1 {metrics['macro_f1']:.3f} · {metrics['backbone']}, {metrics['unfreeze_blocks']} block(s) "
            f"fine-tuned · best of {metrics['epochs']} epochs at epoch {metrics['best_epoch']} · "
            f"{metrics['train_seconds']:.1f} s on {metrics['device']}"
            + (f"<br><b>Test accuracy {metrics['test_accuracy']:.1%}</b> on {metrics['sizes']['test']} files of "
               "test/ (kept apart from training and model choice)" if metrics.get("test_accuracy") is not None
               else "") + small_validation_note(metrics['sizes']['val']))
        self._fill_tables(classes, metrics["per_class"], metrics["confusion_matrix"])
        self.reliability.set_calibration(metrics.get("calibration"))
        self.predictions = RunDir(run_dir).read_table("predictions.tsv")
        self.show_mistakes()

    def _choose_other(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "A folder with the same class names", str(Path.home()))
        if folder:
            self.evaluate(Path(folder))

    def evaluate(self, folder: Path | None) -> Task | None:
        """Evaluate the current run (on its validation files, or a new folder), with TTA if ticked."""
        run_dir = self.state.run_dir
        if run_dir is None:
            return None
        tta = self.tta.isChecked()

        def work(progress, control):
            from tlstudio.core.inference.evaluation import evaluate_run
            from tlstudio.core.store.runs import RunDir

            def report(done: int, total: int) -> None:
                control.checkpoint()  # Cancel stops between batches
                progress(done, total)

            run = RunDir.open(run_dir)
            plain, augmented = evaluate_run(run, folder, tta=tta, progress=report)
            return {"plain": plain, "tta": augmented, "new_folder": folder is not None}

        before = self.headline.text()
        what = f"the files of {folder.name}" if folder is not None else "the validation files"
        self.headline.setText(f"Evaluating {what}" + (" with test-time augmentation" if tta else "") + "…")
        if self.task is not None:
            self.task.drop()
        task = Task(work)
        task.finished.connect(self._show_result)
        task.failed.connect(lambda message, hint: self._evaluation_failed(message, hint, before))
        self.progress.follow(task, f"Evaluating {what}…")
        self.task = task.start()
        return self.task

    def _evaluation_failed(self, message: str, hint: str, before: str) -> None:
        if message == "Cancelled.":  # what was shown before stays, and the page says the new one stopped
            self.headline.setText(f"{before}<br><i>The new evaluation was stopped; the results shown are the "
                                  "earlier ones.</i>")
        else:
            self.headline.setText(before)
            self.error.emit(message, hint)

    def _show_result(self, results: dict) -> None:
        result, tta = results["plain"], results["tta"]
        if result.get("task") == "regression":
            self._show_regression_result(results)
            return
        classes = list(result["per_class"])
        text = (f"<b>Accuracy {result['accuracy']:.1%}</b>{interval_text(result)} on {result['files']} files of "
                f"{result['data']}")
        if result.get("trained_val_accuracy") is not None and results["new_folder"]:
            change = result["accuracy"] - result["trained_val_accuracy"]
            text += (f" · at training (its validation files): {result['trained_val_accuracy']:.1%} "
                     f"<b>({100 * change:+.1f} percentage points)</b>")
        if tta:
            text += f" · with test-time augmentation: {tta['accuracy']:.1%}"
        if result["unknown_classes"]:
            text += f"<br>Class folders the model does not know were left out: {some_of(result['unknown_classes'])}"
        self.headline.setText(text)
        self._fill_tables(classes, result["per_class"], result["confusion_matrix"])
        self.predictions = [{"path": m["path"], "true": m["true"], "predicted": m["predicted"],
                             "confidence": str(m["confidence"])} for m in result.get("misclassified", [])]
        self.show_mistakes()
        self.evaluated.emit(results)

    def _fill_tables(self, classes: list[str], per_class: dict, matrix: list[list[int]]) -> None:
        self.per_class.setRowCount(len(classes))
        for row, name in enumerate(classes):
            values = per_class[name]
            cells = [name, f"{values['precision']:.3f}", f"{values['recall']:.3f}", f"{values['f1']:.3f}",
                     str(values["support"])]
            for col, text in enumerate(cells):
                item = QTableWidgetItem(text)
                if col:
                    item.setTextAlignment(Qt.AlignmentFlag.AlignCenter)
                else:
                    item.setToolTip(name)
                self.per_class.setItem(row, col, item)
        self.matrix.set_matrix(classes, matrix)

    def _set_regression(self, regression: bool, name: str = "value") -> None:
        self.regression, self.target_name = regression, name
        self.left.setCurrentIndex(1 if regression else 0)
        self.show_all.setText("Show the largest errors" if regression else "Show all mistakes")
        self.other.setToolTip("A new folder with a labels.csv of values: see whether the model still holds up."
                              if regression else
                              "A new folder with the same class names: see whether the model still holds up (drift).")

    def _fill_scatter(self) -> None:
        rows = self.predictions
        self.scatter.set_points([float(p["true"]) for p in rows], [float(p["predicted"]) for p in rows],
                                [p["path"] for p in rows], self.target_name)

    def _show_regression_result(self, results: dict) -> None:
        result, tta = results["plain"], results["tta"]
        text = (f"<b>MAE {num_text(result['mae'])} {self.target_name}</b> · RMSE {num_text(result['rmse'])} · R² "
                f"{r2_text(result['r2'])} on {result['files']} files of {result['data']}")
        if result.get("trained_val_mae") is not None and results["new_folder"]:
            text += f" · at training (its validation files): MAE {result['trained_val_mae']:.4g}"
        if result.get("mae_guessing_the_mean") is not None:
            text += f"<br>Always guessing the training mean would give MAE {result['mae_guessing_the_mean']:.4g}."
        if tta:
            text += f" With test-time augmentation: MAE {num_text(tta['mae'])}."
        self.headline.setText(text)
        self.predictions = [{"path": row["path"], "true": str(row["true"]), "predicted": str(row["predicted"]),
                             "error": str(row["error"])} for row in result.get("largest_errors", [])]
        self._fill_scatter()
        self.show_mistakes()
        self.evaluated.emit(results)

    def show_file(self, path: str) -> None:
        """One dot of the scatter, clicked: its file on the right."""
        rows = [p for p in self.predictions if p["path"] == path]
        self.cell_title.setText(f"<b>{Path(path).name}</b>")
        self.show_all.setVisible(True)
        self.scatter.mark(path)
        self._show(rows)
        if rows and self.modality == "audio":
            self.clip_list.setCurrentRow(0)

    def show_mistakes(self) -> None:
        if self.regression:
            rows = sorted(self.predictions, key=lambda p: -abs(float(p["error"])))
            self.scatter.mark("")
            self.cell_title.setText(f"<b>Largest errors</b> (of {len(rows)} files)" if rows else "")
            self.show_all.setVisible(False)
            self._show(rows[:200])
            return
        wrong = [p for p in self.predictions if p["true"] != p["predicted"]]
        wrong.sort(key=lambda p: -float(p["confidence"]))
        self.cell_title.setText(f"<b>Most confident mistakes</b> ({len(wrong)})" if wrong
                                else "<b>No mistakes on the validation files.</b>")
        self.show_all.setVisible(False)
        self.matrix.clearSelection()
        self._show(wrong[:200])

    def show_cell(self, true: str, predicted: str) -> None:
        rows = [p for p in self.predictions if p["true"] == true and p["predicted"] == predicted]
        self.cell_title.setText(f"<b>{len(rows)} '{true}' file(s) predicted as '{predicted}'</b>")
        self.show_all.setVisible(True)
        self._show(rows)

    def _gallery_menu(self, position) -> None:
        index = self.gallery.indexAt(position)
        if not index.isValid():
            return
        path = self.gallery.thumbs.paths[index.row()]
        menu = QMenu(self)
        menu.addAction("What did the model look at?", lambda: self.explain(path))
        if path in self.state.excluded():
            menu.addAction("Use this file in training again", lambda: self.state.set_excluded(path, False))
        else:
            menu.addAction("Leave this file out of training (mislabelled?)",
                           lambda: self.state.set_excluded(path, True))
        spec = self.state.spec
        if spec is not None and not spec.regression:
            folder = next((spec.classes[s.label] for s in spec.train + spec.val + spec.test if s.path == path), None)
            if folder is not None:  # a file of the open folder: it can be trained as another class
                relabel = menu.addMenu("Relabel as")
                current = self.state.relabelled().get(path, folder)
                for name in spec.classes:
                    action = relabel.addAction(name, lambda name=name: self.state.set_label(
                        path, None if name == folder else name))
                    action.setCheckable(True)
                    action.setChecked(name == current)
        if self.state.excluded() or self.state.relabelled():
            menu.addAction("Retrain with these changes", self.retrain_requested)
        menu.popup(self.gallery.viewport().mapToGlobal(position))
        self._popup = menu

    def _drop_explanation(self) -> None:
        """Another model: a heat map of the previous one must neither land nor stay open."""
        task = getattr(self, "explain_task", None)
        if task is not None:
            task.drop()
            self.explain_task = None
        dialog = getattr(self, "explanation_dialog", None)
        if dialog is not None:
            dialog.close()
            self.explanation_dialog = None

    def explain(self, path: str) -> Task | None:
        """The heat map of one file (for the class the model chose) in a window of its own."""
        run_dir = self.state.run_dir
        if run_dir is None:
            return None
        self._drop_explanation()  # one at a time: the newest request wins

        def work(_progress, _control):
            from tlstudio.core.inference.saliency import explain, overlay
            from tlstudio.core.store.runs import RunDir

            explanation = explain(RunDir.open(run_dir), path)
            return explanation, overlay(explanation)

        task = Task(work)
        task.finished.connect(self._show_explanation)
        task.failed.connect(self.error)
        self.explain_task = task.start()
        return self.explain_task

    def _show_explanation(self, result) -> None:
        from PySide6.QtWidgets import QDialog

        from tlstudio.gui.widgets.pixmaps import array_pixmap

        explanation, mixed = result
        dialog = QDialog(self)
        dialog.setWindowTitle(f"What the model looked at: {Path(explanation.path).name}")
        layout = QVBoxLayout(dialog)
        caption = QLabel(f"<b>{explanation.describe()}</b> · {explanation.method}. "
                         "Left: what the network sees. Right: bright is what decided the answer.")
        caption.setWordWrap(True)
        row = QHBoxLayout()
        for pixels in (explanation.picture, mixed):
            picture = QLabel()
            picture.setPixmap(array_pixmap(pixels))
            row.addWidget(picture)
        layout.addWidget(caption)
        layout.addLayout(row)
        dialog.show()
        self.explanation_dialog = dialog

    def _show(self, rows: list[dict[str, str]]) -> None:
        metrics = self.gallery.fontMetrics()
        room = self.gallery.gridSize().width() - 8

        def fit(text: str, pixels: int) -> str:
            return metrics.elidedText(text, Qt.TextElideMode.ElideMiddle, max(pixels, 10))

        def numbers(p: dict, digits: int) -> str:
            return (f"{float(p['true']):.{digits}g} → {float(p['predicted']):.{digits}g} "
                    f"({float(p['error']):+.{min(digits, 3)}g})")

        def fit_numbers(p: dict) -> str:
            """Fewer digits until it fits: a number cut in its middle ("0.0942 → …6") reads as nothing."""
            for digits in (4, 3, 2):
                if metrics.horizontalAdvance(numbers(p, digits)) <= room:
                    return numbers(p, digits)
            return f"{float(p['true']):.2g} → {float(p['predicted']):.2g}"

        if self.regression:
            lines = [(Path(p["path"]).name, numbers(p, 4)) for p in rows]
            short = [fit_numbers(p) for p in rows]
        else:
            lines = [(Path(p["path"]).name, f"{p['true']} → {p['predicted']} {float(p['confidence']):.0%}")
                     for p in rows]
            names_room = room - metrics.horizontalAdvance(" →  100%")

            def pair(true: str, predicted: str) -> str:
                """Both names whole when they fit; else the shorter one whole if it takes at most half, and the
                other shortened in the middle to the rest ("pa…se → si…ka" read as nothing)."""
                wide = {name: metrics.horizontalAdvance(name) for name in (true, predicted)}
                if wide[true] + wide[predicted] <= names_room:
                    return f"{true} → {predicted}"
                half = names_room // 2
                if wide[predicted] <= half:
                    return f"{fit(true, names_room - wide[predicted])} → {predicted}"
                if wide[true] <= half:
                    return f"{true} → {fit(predicted, names_room - wide[true])}"
                return f"{fit(true, half)} → {fit(predicted, half)}"

            short = [f"{pair(p['true'], p['predicted'])} {float(p['confidence']):.0%}" for p in rows]
        # two lines that each fit the thumbnail's width (a wrapped long name pushed "true → predicted" out of
        # sight); the whole of both is in the list of clips and the thumbnail's tooltip
        captions = [f"{fit(name, room)}\n{verdict}" for (name, _), verdict in zip(lines, short, strict=True)]
        self.gallery.thumbs.set_paths([p["path"] for p in rows], captions,
                                      [f"{p['path']}\n{verdict}" for p, (_, verdict) in zip(rows, lines, strict=True)])
        self._clip_rows = rows
        self.clip_list.set_lines([f"{name}  ·  {verdict}" for name, verdict in lines])

    def _clip_chosen(self, row: int) -> None:
        rows = getattr(self, "_clip_rows", [])
        if 0 <= row < len(rows):
            self.clip_view.show_clip(rows[row]["path"])

    def shown_paths(self) -> list[str]:
        return list(self.gallery.thumbs.paths)
