"""The loop's callbacks and the run service: extending a run without touching the loop (no display)."""

from __future__ import annotations

import json
from pathlib import Path

from tlstudio.core.data.scan import scan
from tlstudio.core.media.images import check_image
from tlstudio.core.training import callbacks, child, session
from tlstudio.core.training.config import TrainConfig

SMALL = dict(backbone="mobilenet_v3_small", pretrained="none", batch_size=16)


class LossRecorder(callbacks.Callback):
    """The acceptance's example: every batch's loss, in order, and every hook's call in order."""

    def __init__(self) -> None:
        self.losses: list[float] = []
        self.calls: list[str] = []

    def before_fit(self, loop) -> None:
        self.calls.append("before_fit")

    def before_phase(self, loop, phase) -> None:
        self.calls.append(f"before_phase {phase.name}")

    def after_batch(self, loop, batch) -> None:
        self.losses.append(batch.loss)

    def after_epoch(self, loop, record) -> None:
        self.calls.append(f"after_epoch {record.epoch}")

    def after_fit(self, loop, status) -> None:
        self.calls.append(f"after_fit {status}")


def test_a_new_callback_sees_every_batch_without_touching_the_loop(shapes_dir: Path, tmp_path: Path) -> None:
    config = TrainConfig(data=str(shapes_dir), epochs=3, schedule="two-phase", warmup_epochs=1, unfreeze="1",
                         **SMALL)
    spec = scan(shapes_dir, val_split=config.val_split, seed=config.seed, check_file=check_image)
    recorder = LossRecorder()
    seen: list = []
    handle = session.start(session.RunRequest(spec, config, tmp_path / "run", callbacks=(recorder,)))
    metrics = handle.run(seen.append)
    assert metrics["status"] == "completed" and handle.path == (tmp_path / "run").resolve()
    relayed = [event.loss for event in seen if type(event).__name__ == "BatchEnd"]
    assert recorder.losses == relayed and len(relayed) >= 3  # the standard relay and the new callback agree
    assert recorder.calls == ["before_fit", "before_phase head", "after_epoch 1", "before_phase fine-tune",
                              "after_epoch 2", "after_epoch 3", "after_fit completed"]


def test_the_run_service_names_folders_and_chooses_where_a_run_goes(shapes_dir: Path, tmp_path: Path) -> None:
    spec = scan(shapes_dir, val_split=0.2, seed=0, check_file=check_image)
    one = session.start(session.RunRequest(spec, TrainConfig(**SMALL)))
    assert one.path.parent.name == "runs" and one.path.name.endswith("-mobilenet_v3_small") and not one.on_processes
    many = session.start(session.RunRequest(spec, TrainConfig(devices=2, **SMALL), tmp_path / "many"))
    assert many.on_processes  # several devices: processes of their own (processes.py), for window and CLI alike
    run = tmp_path / "began-on-two"
    run.mkdir()
    (run / "config.json").write_text(json.dumps({"devices": 2}))
    assert session.start(session.RunRequest(resume=run)).on_processes  # resumed as it began


def test_a_child_process_has_the_cores_own_argument_contract(tmp_path: Path) -> None:
    """processes.py starts children with child.py's arguments, never the command line's flags."""
    new = child.arguments(tmp_path / "run", tmp_path / "plan.json", 2)
    parsed = child.parser().parse_args(new)
    assert (parsed.out, parsed.plan, parsed.resume, parsed.devices) == (
        str(tmp_path / "run"), str(tmp_path / "plan.json"), False, 2)
    resumed = child.parser().parse_args(child.arguments(tmp_path / "run", None, 2))
    assert resumed.resume and resumed.plan is None
    assert child.command(new)[1:3] == ["-m", "tlstudio.core.training.child"]
    assert "train" not in child.command(new)
