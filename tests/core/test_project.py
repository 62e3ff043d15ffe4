"""Projects save and reopen; runs are summarised; the from-scratch twin keeps the budget."""

from __future__ import annotations

from pathlib import Path

import pytest

from tlstudio.core.data.scan import scan
from tlstudio.core.errors import RunError
from tlstudio.core.store.project import Project, run_summary
from tlstudio.core.store.runs import RunDir
from tlstudio.core.training import engine
from tlstudio.core.training.config import TrainConfig, from_scratch


def test_a_project_saves_and_reopens_with_its_runs(shapes_dir: Path, tmp_path: Path) -> None:
    config = TrainConfig(data=str(shapes_dir), backbone="mobilenet_v3_small", pretrained="none", epochs=1)
    engine.train(scan(shapes_dir), config, RunDir.create(tmp_path / "run", config.backbone), lambda _e: None)
    project = Project(data=str(shapes_dir), settings=config.to_dict())
    project.add_run(tmp_path / "run")
    project.add_run(tmp_path / "gone")
    saved = project.save(tmp_path / "my study")
    assert saved.name == "my study.tlsproj"
    again = Project.load(saved)
    assert again.data == str(shapes_dir) and len(again.runs) == 2 and again.settings["epochs"] == 1
    rows = [run_summary(run) for run in again.runs]
    assert rows[0]["backbone"] == "mobilenet_v3_small" and rows[0]["depth"] == 0 and rows[0]["epochs"] == 1
    assert rows[1]["status"] == "missing"


def test_a_broken_project_file_is_explained(tmp_path: Path) -> None:
    (tmp_path / "bad.tlsproj").write_text("{ not json")
    with pytest.raises(RunError, match="not a readable project"):
        Project.load(tmp_path / "bad.tlsproj")


def test_the_from_scratch_twin_keeps_the_budget() -> None:
    config = TrainConfig(backbone="resnet18", epochs=7, batch_size=16, unfreeze="2")
    twin = from_scratch(config)
    assert (twin.pretrained, twin.unfreeze, twin.epochs, twin.batch_size) == ("none", "all", 7, 16)
    assert twin.backbone == "resnet18" and twin.head == config.head
