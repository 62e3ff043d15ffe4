"""Continued training (--from RUN): old and added classes, rehearsal, the forgetting meter, resume."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from tlstudio.core.control import Control
from tlstudio.core.data.scan import scan
from tlstudio.core.errors import ConfigError, DataError
from tlstudio.core.models.saved import load_model
from tlstudio.core.store.runs import RunDir
from tlstudio.core.training import continuation, engine
from tlstudio.core.training import events as ev
from tlstudio.core.training.config import TrainConfig, continuation_defaults
from tlstudio.demo import make_image_folder

SMALL = dict(backbone="mobilenet_v3_small", pretrained="none", batch_size=16)


@pytest.fixture(scope="module")
def folders(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, Path]:
    """An old run on circles/squares, and new data with squares and an added class."""
    root = tmp_path_factory.mktemp("continue")
    old = make_image_folder(root / "old", classes=("circles", "squares"), per_class=16, size=(96, 72), seed=1)
    new = make_image_folder(root / "new", classes=("squares", "triangles"), per_class=16, size=(96, 72), seed=5)
    config = TrainConfig(data=str(old), epochs=2, **SMALL)
    spec = scan(old, val_split=0.25, check_file="auto", group_by="none")
    engine.train(spec, config, RunDir.create(root / "run_old", config.backbone), lambda _e: None)
    return old, new, root / "run_old"


def continue_run(new: Path, old_run: Path, out: Path, control: Control | None = None, **overrides):
    old_config = json.loads((old_run / "config.json").read_text())
    config = continuation_defaults(TrainConfig(data=str(new), start_from=str(old_run), epochs=3, **SMALL),
                                   old_config, set(overrides))
    for key, value in overrides.items():
        setattr(config, key, value)
    spec = scan(new, val_split=0.25, check_file="auto", group_by="none")
    events: list = []
    metrics = engine.train(spec, config, RunDir.create(out, config.backbone), events.append, control)
    return metrics, events


def test_old_classes_keep_their_head_rows_and_added_ones_are_fresh(folders) -> None:
    _old, new, old_run = folders
    old_model, _old_classes, _ = load_model(RunDir.open(old_run))
    spec = scan(new, val_split=0.25, check_file="auto", group_by="none")
    spec, plan = continuation.plan(spec, str(old_run), 0.5, 0, "mobilenet_v3_small")
    assert spec.classes == ["circles", "squares", "triangles"] and plan.added == ["triangles"]
    assert {spec.classes[s.label] for s in spec.val} <= {"squares", "triangles"}
    from tlstudio.core.models.registry import get_entry
    from tlstudio.core.models.transfer_model import build_model

    model = build_model(get_entry("mobilenet_v3_small"), 3, "linear")
    continuation.load_into(model, plan, spec.classes)
    model.eval()
    x = torch.rand(2, 3, 224, 224)
    with torch.no_grad():
        assert torch.allclose(model(x)[:, :2], old_model(x), atol=1e-5)  # old logits unchanged
    again, plan_again = continuation.plan(spec, str(old_run), 0.5, 0, "mobilenet_v3_small")
    assert len(again.train) == len(spec.train)  # planning a resumed run adds no rehearsal file twice
    assert plan_again.rehearsal == plan.rehearsal and plan.rehearsal


def test_a_continued_run_meters_forgetting_every_epoch(folders, tmp_path: Path) -> None:
    old, new, old_run = folders
    metrics, events = continue_run(new, old_run, tmp_path / "run")
    epochs = [e for e in events if isinstance(e, ev.EpochEnd)]
    assert len(epochs) == 3 and all(e.old_val is not None for e in epochs)
    history = RunDir.open(tmp_path / "run").read_history()
    assert [row["old_val_acc"] for row in history] == [pytest.approx(e.old_val, abs=1e-6) for e in epochs]
    forgetting = metrics["forgetting"]
    old_metrics = json.loads((old_run / "metrics.json").read_text())
    assert forgetting["old_val_acc_before"] == old_metrics["val_accuracy"]
    best = next(row for row in history if row["epoch"] == metrics["best_epoch"])
    assert forgetting["old_val_acc_after"] == pytest.approx(best["old_val_acc"])
    assert forgetting["verdict"].startswith("old accuracy ") and "->" in forgetting["verdict"]
    assert forgetting["old_val_files"] == len(json.loads((old_run / "dataset.json").read_text())["val"])
    dataset = json.loads((tmp_path / "run" / "dataset.json").read_text())
    rehearsed = [s for s in dataset["train"] if s["path"].startswith(str(old))]
    assert len(rehearsed) == forgetting["rehearsal_files"] > 0
    config = json.loads((tmp_path / "run" / "config.json").read_text())
    assert config["start_from"] == str(old_run) and config["lr"] == pytest.approx(3e-3 / 3)
    assert config["resolved"]["continued_from"]["added_classes"] == ["triangles"]
    assert metrics["classes"] == ["circles", "squares", "triangles"]


def test_a_stopped_continued_run_resumes_like_an_uninterrupted_one(folders, tmp_path: Path) -> None:
    _old, new, old_run = folders
    straight, _ = continue_run(new, old_run, tmp_path / "straight", unfreeze="1")
    control = Control()

    def stop_after_first_epoch(event) -> None:
        if isinstance(event, ev.EpochEnd):
            control.cancel()

    old_config = json.loads((old_run / "config.json").read_text())
    config = continuation_defaults(TrainConfig(data=str(new), start_from=str(old_run), epochs=3, **SMALL),
                                   old_config, {"unfreeze"})
    config.unfreeze = "1"
    spec = scan(new, val_split=0.25, check_file="auto", group_by="none")
    run = RunDir.create(tmp_path / "stopped", config.backbone)
    engine.train(spec, config, run, stop_after_first_epoch, control)
    resumed = engine.resume(RunDir.open(tmp_path / "stopped"), lambda _e: None)
    assert resumed["forgetting"]["old_val_acc_after"] == straight["forgetting"]["old_val_acc_after"]
    assert resumed["val_accuracy"] == straight["val_accuracy"]
    assert resumed["forgetting"]["rehearsal_files"] == straight["forgetting"]["rehearsal_files"]


def test_what_cannot_be_continued_is_said(folders, tmp_path: Path) -> None:
    _old, new, old_run = folders
    old_config = json.loads((old_run / "config.json").read_text())
    with pytest.raises(ConfigError, match="differs from the run continued from"):
        continuation_defaults(TrainConfig(data=str(new), backbone="resnet18", start_from=str(old_run)),
                              old_config, {"backbone"})
    from tests.core.test_regression import brightness_folder

    numbers = brightness_folder(tmp_path / "numbers", files=12)
    spec = scan(numbers, val_split=0.25, check_file="auto", group_by="none")
    with pytest.raises(DataError, match="regression"):
        continuation.plan(spec, str(old_run), 0.25, 0, "mobilenet_v3_small")
