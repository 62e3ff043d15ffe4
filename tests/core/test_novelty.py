""""Unlike anything it was trained on": inputs far from the training files in feature space are called
unknown even when the softmax is confident."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from tlstudio.cli import main
from tlstudio.core.data.scan import scan
from tlstudio.core.inference.novelty import NoveltyCheck, build
from tlstudio.core.inference.predict import UNKNOWN, Predictor
from tlstudio.core.models.saved import novelty_data_ok as check
from tlstudio.core.store.runs import RunDir
from tlstudio.core.training import engine
from tlstudio.core.training.config import TrainConfig
from tlstudio.demo import make_image_folder


def _cluster(centre: torch.Tensor, n: int, seed: int) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    return centre + 0.3 * torch.randn(n, centre.numel(), generator=generator)


def test_the_threshold_passes_most_familiar_inputs_and_flags_far_ones() -> None:
    generator = torch.Generator().manual_seed(0)
    a, b = torch.randn(64, generator=generator), torch.randn(64, generator=generator)
    novelty = build(_cluster(a, 400, 1), _cluster(a, 200, 2))
    familiar = NoveltyCheck(novelty).scores(_cluster(a, 500, 3))
    far = NoveltyCheck(novelty).scores(_cluster(b, 100, 4))
    assert 0.0 < float((familiar > 1).float().mean()) < 0.12  # about 5% by construction
    assert bool((far > 1).all())
    assert novelty["bank"].dtype == torch.float16 and check(novelty)


def test_degenerate_or_damaged_familiarity_data_is_refused_or_skipped() -> None:
    same = torch.ones(50, 8)
    assert build(same, same) is None  # an untrained network maps everything to one point
    assert build(torch.randn(50, 8), torch.randn(5, 8)) is None  # too few validation files
    good = build(torch.randn(50, 8), torch.randn(20, 8))
    assert check(None) and check(good)
    for bad in ({**good, "threshold": float("nan")}, {**good, "k": 0}, {**good, "bank": [1, 2]}, "x"):
        assert not check(bad)


@pytest.mark.slow
def test_a_pretrained_run_calls_a_different_kind_of_picture_unknown(tmp_path: Path, capsys) -> None:
    """Shapes drawn in one style vs a class-free set of noise textures: the model is confident about the
    textures (the softmax has nowhere else to go) but their features are far from every training picture."""
    shapes = make_image_folder(tmp_path / "shapes", classes=("circles", "squares", "triangles"), per_class=30,
                               size=(128, 96), seed=3)
    config = TrainConfig(data=str(shapes), backbone="mobilenet_v2", pretrained="imagenet", epochs=3,
                         val_split=0.3)
    metrics = engine.train(scan(shapes, val_split=0.3), config, RunDir.create(tmp_path / "run", config.backbone),
                           lambda _e: None)
    assert metrics["novelty"]["threshold"] > 0
    noise = tmp_path / "noise"
    noise.mkdir()
    from PIL import Image

    generator = torch.Generator().manual_seed(5)
    for i in range(12):
        pixels = (torch.rand(96, 128, 3, generator=generator) * 255).to(torch.uint8).numpy()
        Image.fromarray(pixels).save(noise / f"noise_{i}.png")
    predictor = Predictor(RunDir.open(tmp_path / "run"))
    strange = predictor.predict(sorted(noise.iterdir()))
    assert sum(p.verdict() == UNKNOWN for p in strange) >= 11
    assert all(p.verdict(reject_unfamiliar=False) != UNKNOWN for p in strange)
    held_out = make_image_folder(tmp_path / "more", classes=("circles", "squares", "triangles"), per_class=8,
                                 size=(128, 96), seed=11)
    familiar = predictor.predict(sorted(held_out.rglob("*.jpg")))
    assert len(familiar) == 24 and sum(p.unfamiliar for p in familiar) <= 4  # new drawings of the same kind mostly pass
    assert main(["predict", str(tmp_path / "run"), str(noise / "noise_0.png")]) == 0
    assert "unlike the training files" in capsys.readouterr().out
    assert main(["evaluate", str(tmp_path / "run"), str(held_out)]) == 0
    assert "Unlike the training files:" in capsys.readouterr().out
