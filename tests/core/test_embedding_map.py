"""The embedding map: every file placed, mistakes and outliers marked, planted wrong labels found."""

from __future__ import annotations

import csv
import shutil
from pathlib import Path

import pytest

from tlstudio.core.data.scan import scan
from tlstudio.core.store.runs import RunDir
from tlstudio.core.training import embedding_map, engine
from tlstudio.core.training.config import TrainConfig
from tlstudio.demo import make_image_folder


@pytest.fixture(scope="module")
def planted_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[str]]:
    """Shapes with four circles filed under squares; real ImageNet features, frozen."""
    root = tmp_path_factory.mktemp("map")
    data = make_image_folder(root / "d", classes=("circles", "squares", "triangles"), per_class=30,
                             size=(128, 96), seed=3)
    planted = []
    for path in sorted((data / "circles").iterdir())[:4]:
        target = data / "squares" / f"c_{path.name}"
        shutil.move(str(path), target)
        planted.append(str(target.resolve()))
    config = TrainConfig(data=str(data), backbone="mobilenet_v2", epochs=15)
    spec = scan(data, val_split=0.25, check_file="auto", group_by="none")
    engine.train(spec, config, RunDir.create(root / "run", config.backbone), lambda _e: None)
    return root / "run", planted


def test_the_map_places_every_file_and_finds_planted_wrong_labels(planted_run, tmp_path: Path) -> None:
    run_dir, planted = planted_run
    result = embedding_map.build_map(RunDir.open(run_dir))
    points = result["points"]
    assert result["files"] == len(points) == 90 and result["classes"] == ["circles", "squares", "triangles"]
    assert {p["split"] for p in points} == {"train", "val"}
    assert all(isinstance(p["x"], float) and isinstance(p["y"], float) for p in points)
    suspects = {p["path"] for p in points if p["suspect"]}
    assert len(suspects & set(planted)) >= 3  # measured: 3 of the 4 planted, and nothing else
    assert len(suspects - set(planted)) <= 2
    by_path = {p["path"]: p for p in points}
    assert all(by_path[s]["neighbours_say"] == "circles" for s in suspects & set(planted))
    assert 1 <= sum(p["outlier"] for p in points) <= 4  # the top 2% of neighbour distances
    out = tmp_path / "map.csv"
    embedding_map.write_csv(result, out)
    with open(out) as handle:
        assert len(list(csv.DictReader(handle))) == 90


def test_the_cli_writes_the_map_and_names_the_suspects(planted_run, tmp_path: Path, capsys) -> None:
    from tlstudio.cli import main

    run_dir, planted = planted_run
    assert main(["map", str(run_dir), "--csv", str(tmp_path / "m.csv")]) == 0
    printed = capsys.readouterr().out
    assert "look mislabelled" in printed or "that look mislabelled" in printed
    assert any(Path(p).name in printed for p in planted)
    assert (run_dir / "map.json").is_file() and (tmp_path / "m.csv").is_file()


def test_identical_embeddings_are_refused_in_words_not_a_crash() -> None:
    """scikit-learn's t-SNE killed the whole process (SIGSEGV) when every file had the same embedding, as a
    run from random weights gives; the map now says why there is nothing to draw."""
    import pytest
    import torch

    from tlstudio.core.errors import DataError
    from tlstudio.core.training.embedding_map import project

    with pytest.raises(DataError, match="nearly all the same way"):
        project(torch.ones(80, 64))
    xy, _ = project(torch.randn(80, 64))  # real spread: mapped as before
    assert xy.shape == (80, 2) and torch.isfinite(xy).all()
