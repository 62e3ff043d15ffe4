"""Depth advice: a linear probe against a short fine-tune on a subset, and the rule that reads them."""

from __future__ import annotations

import itertools
from pathlib import Path

from tlstudio.core.data.scan import scan
from tlstudio.core.training.config import TrainConfig
from tlstudio.core.training.recommend import _decide, recommend


def _metrics(score: float, val: int = 100) -> dict:
    return {"val_accuracy": score, "sizes": {"train": 300, "val": val}, "train_seconds": 1.0}


def test_fine_tuning_is_advised_only_beyond_the_probes_noise(shapes_dir: Path) -> None:
    spec = scan(shapes_dir, val_split=0.25, group_by="none")
    frozen = _decide(spec, _metrics(0.90), _metrics(0.91), 4, "val_accuracy", False, 8)
    assert frozen.unfreeze == 0 and frozen.schedule == "one-phase" and "Feature extraction" in frozen.why
    assert "90.0%" in frozen.why and "91.0%" in frozen.why  # the evidence is shown
    tuned = _decide(spec, _metrics(0.86), _metrics(0.95), 4, "val_accuracy", False, 8)
    assert tuned.unfreeze == 4 and tuned.schedule == "two-phase" and "Fine-tuning pays" in tuned.why
    noisy = _decide(spec, _metrics(0.88, val=20), _metrics(0.96, val=20), 4, "val_accuracy", False, 8)
    assert noisy.unfreeze == 0  # +8 points on 20 validation files is less than two files: not trusted
    unlike = _decide(spec, _metrics(0.25), _metrics(0.19), 4, "val_accuracy", False, 14)
    assert unlike.unfreeze == 14 and unlike.schedule == "two-phase" and "unlike" in unlike.why


def test_the_probes_run_through_the_engine(shapes_dir: Path) -> None:
    spec = scan(shapes_dir, val_split=0.25, group_by="none")
    config = TrainConfig(data=str(shapes_dir), backbone="mobilenet_v3_small", pretrained="none", batch_size=16)
    stages: list[str] = []
    steps: list[tuple[int, int]] = []
    advice = recommend(spec, config, progress=lambda stage, done, total: (stages.append(stage),
                                                                           steps.append((done, total))))
    assert advice.probe["probe_depth"] >= 1 and advice.probe["train_files"] == len(spec.train)
    assert 0 <= advice.probe["linear"] <= 1 and 0 <= advice.probe["fine_tune"] <= 1
    assert stages[0] == "linear probe" and stages[-1] == "probes done"
    # one unit throughout (files through the network), moving forward in many small steps: a bar and an ETA
    assert len({total for _, total in steps}) == 1 and len(steps) > 10
    assert all(a[0] <= b[0] for a, b in itertools.pairwise(steps)) and steps[-1][0] == steps[-1][1]
    assert advice.unfreeze in (0, advice.probe["probe_depth"], advice.probe["blocks"])
