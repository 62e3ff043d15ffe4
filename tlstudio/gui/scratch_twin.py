"""Does transfer help? The from-scratch twin of a run: the same network, head, budget and split from random
weights, started after a question that says how long it will take and offers a shorter budget. A mixin of
MainWindow (it uses the window's state, pages and status bar)."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtWidgets import QMessageBox

SHORT_SCRATCH_EPOCHS = 3  # the from-scratch twin's shorter budget


class ScratchTwin:
    def check_transfer(self, run_path: str) -> None:
        """Train the same network and head from random weights with the same budget, on the run's own split."""
        from tlstudio.core.data.spec import read_spec
        from tlstudio.core.errors import StudioError
        from tlstudio.core.store.runs import RunDir
        from tlstudio.core.training.config import TrainConfig, from_scratch

        if self.state.training:
            return
        try:
            config, _ignored = TrainConfig.parse(RunDir.open(run_path).settings())
            spec = read_spec(RunDir(Path(run_path)))
        except (OSError, ValueError, StudioError) as exc:
            self.show_error(f"The run {Path(run_path).name} cannot be repeated from scratch: {exc}.")
            return
        twin = from_scratch(config)
        answer = self._ask_scratch_budget(twin, RunDir(Path(run_path)).read_json_or("metrics.json", {}))
        if answer == "cancel":
            return
        if answer == "short":
            twin.epochs = min(twin.epochs, SHORT_SCRATCH_EPOCHS)
        from tlstudio.core.training.session import new_run_path

        target = new_run_path(f"{twin.backbone}-scratch")  # named by the run service, as every run
        self._compare_after = [run_path, str(target)]
        self.steps.setCurrentRow(2)
        self.train_page.start(target, twin, spec=spec, comparison=True)
        self.statusBar().showMessage("Training the same network from scratch, with the same budget and split…")

    def _ask_scratch_budget(self, twin, metrics: dict) -> str:
        """Before a from-scratch twin starts: its estimated time, and a shorter budget. 'full', 'short' or 'cancel'."""
        from tlstudio.core.training.eta import clock, from_scratch_seconds

        seconds, floor = from_scratch_seconds(metrics, twin.epochs)
        short, _ = from_scratch_seconds(metrics, min(twin.epochs, SHORT_SCRATCH_EPOCHS))
        box = QMessageBox(QMessageBox.Icon.Question, "Does transfer help?",
                          f"This trains every block of {twin.backbone} from random weights for {twin.epochs} epochs: "
                          f"{'at least ' if floor else 'about '}{clock(seconds)} on this computer, estimated from the "
                          "run it is compared with.", parent=self)
        box.setInformativeText(f"A shorter budget ({SHORT_SCRATCH_EPOCHS} epochs, about {clock(short)}) answers "
                               "sooner; the comparison then says so, since the pretrained run had more epochs.")
        full = box.addButton(f"Train {twin.epochs} epochs", QMessageBox.ButtonRole.AcceptRole)
        shorter = box.addButton(f"{SHORT_SCRATCH_EPOCHS} epochs", QMessageBox.ButtonRole.ActionRole)
        box.addButton(QMessageBox.StandardButton.Cancel)
        box.exec()
        return {id(full): "full", id(shorter): "short"}.get(id(box.clickedButton()), "cancel")
