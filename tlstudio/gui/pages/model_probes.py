"""The Model page's two short probes on the open data, in the background: the learning-rate range test
(core/training/lr_finder.py, "Find…") and the depth advice (core/training/recommend.py, "Recommend").

A mixin of ModelPage: it uses the page's state, its settings (`collect`), its widgets (lr, depth, schedule,
warmup, the two buttons, the advice label) and its `error` signal.
"""

from __future__ import annotations

import time
from dataclasses import replace

from PySide6.QtWidgets import QPushButton

from tlstudio.core.training.eta import at_rate, clock
from tlstudio.gui.tasks import Task


class ModelProbes:
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
        """The depth advice (core/training/recommend.py) for the open data and backbone, in the background with
        its progress and ETA; the button cancels it while it runs; the advice is applied when it lands."""
        running = getattr(self, "recommend_task", None)
        if running is not None and running.thread.isRunning():
            running.cancel()
            self.recommend_button.setEnabled(False)
            self.advice.setText("Stopping the probe… nothing was changed.")
            return None
        chosen = self._probe_input()
        if chosen is None:
            return None
        spec, config = chosen
        stage = {"name": "", "started": time.perf_counter()}

        def work(progress, control):
            from tlstudio.core.training.recommend import recommend

            def report(name: str, done: int, total: int) -> None:
                stage["name"] = name
                progress(done, total)

            return recommend(spec, config, control=control, progress=report)

        self._advice_for = (self.state.spec, config.backbone)
        self._advice_set = None
        self.advice.setText("Probing a subset of your files: a linear probe, then a short fine-tune… "
                            "(estimating the time left)")
        idle = self.recommend_button.text()
        self.recommend_button.setText("Cancel")
        task = Task(work)
        task.progress.connect(lambda done, total: self._probe_progress(stage, done, total))
        task.finished.connect(self._recommended)
        task.failed.connect(lambda message, hint: self.advice.setText(
            "Stopped: no advice, and nothing was changed." if message == "Cancelled." else
            f"No advice: {message} {hint}"))
        task.done.connect(lambda: (self.recommend_button.setEnabled(True), self.recommend_button.setText(idle)))
        self.recommend_task = task.start()
        return self.recommend_task

    def _probe_progress(self, stage: dict, done: int, total: int) -> None:
        if self.recommend_task.control.cancelled:
            return
        elapsed = time.perf_counter() - stage["started"]
        left = (f"ETA {clock(at_rate(elapsed, done, total - done))}" if done > 0 and elapsed > 2
                else "estimating time left")
        self.advice.setText(f"Probing ({stage['name']}): {100 * done // max(total, 1)}% · {left}. "
                            "Press Cancel to stop.")

    def _recommended(self, advice) -> None:
        spec, backbone = self._advice_for
        if spec is not self.state.spec or backbone != self.state.config.backbone:
            self.advice.setText("The data or the backbone changed during the probe: press Recommend again.")
            return
        self.depth.setValue(min(advice.unfreeze, self.depth.maximum()))
        self.schedule.setCurrentIndex(max(0, self.schedule.findData(advice.schedule)))
        if advice.schedule == "two-phase":
            self.warmup.setValue(advice.warmup_epochs)
        self._advice_set = (self.depth.value(), advice)
        self.advice.setText(f"<b>Recommended and set:</b> {advice.why}")
        self.collect()

    def _advice_still_set(self) -> None:
        """After the user moves the depth away from the advice, the page no longer says it is set."""
        chosen = getattr(self, "_advice_set", None)
        if chosen is None:
            if self.advice.text().startswith(("Stopped: no advice", "No advice:")):
                self.advice.setText("")  # a stopped probe's news, stale once the user moves on
            return
        depth, advice = chosen
        if self.depth.value() != depth:
            self._advice_set = None
            self.advice.setText(f"<b>Recommended</b> (you chose another depth since): {advice.why}")

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
