"""DataLoader worker processes start with 'spawn' (safe inside Qt and in frozen apps) and give the same run.

This machine has 2 cores, so the automatic choice is 0 workers; these tests force 1 worker to prove the
spawn path works: datasets, transforms and collate functions are importable, picklable module-level code.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from tlstudio.core.data.scan import scan
from tlstudio.core.store.runs import RunDir
from tlstudio.core.training import engine
from tlstudio.core.training.config import TrainConfig
from tlstudio.demo_audio import make_sound_folder

SMALL = dict(backbone="mobilenet_v3_small", pretrained="none", batch_size=16, cache_features=False)


@pytest.mark.parametrize("settings", [dict(unfreeze="0"), dict(unfreeze="1", augment="light")],
                         ids=["fast-path", "fine-tune"])
def test_a_spawned_worker_gives_the_same_run_as_the_main_process(shapes_dir: Path, tmp_path: Path,
                                                                 settings) -> None:
    results = {}
    for workers in (0, 1):
        config = TrainConfig(data=str(shapes_dir), epochs=2, workers=workers, **SMALL, **settings)
        out = tmp_path / f"w{workers}"
        results[workers] = engine.train(scan(shapes_dir), config, RunDir.create(out, config.backbone),
                                        lambda _e: None)
    assert results[1]["status"] == "completed"
    # augmentation is seeded per (seed, epoch, file), not per worker process: the same batches, the same run
    a = torch.load(tmp_path / "w0" / "model.pt", weights_only=True)["state_dict"]
    b = torch.load(tmp_path / "w1" / "model.pt", weights_only=True)["state_dict"]
    assert all(torch.allclose(a[k].float(), b[k].float(), atol=1e-5) for k in a)
    history = [RunDir.open(tmp_path / f"w{w}").read_history() for w in (0, 1)]
    for one, other in zip(*history, strict=True):
        assert abs(one["train_loss"] - other["train_loss"]) < 1e-4 and one["val_acc"] == other["val_acc"]


def test_sound_loads_in_a_spawned_worker(tmp_path: Path) -> None:
    data = make_sound_folder(tmp_path / "sounds", per_class=4, seed=8)
    config = TrainConfig(data=str(data), epochs=1, workers=1, unfreeze="1", augment="strong", **SMALL)
    metrics = engine.train(scan(data, check_file="auto"), config, RunDir.create(tmp_path / "run", config.backbone),
                           lambda _e: None)
    assert metrics["status"] == "completed"
