"""What the model looks at: occlusion finds the region a model depends on; Grad-CAM and the sound map come
out the size of what the network sees; `tlstudio explain` writes the picture."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch import nn

from tlstudio.cli import main
from tlstudio.core.data.scan import scan
from tlstudio.core.inference.saliency import colour, explain, grad_cam, occlusion, overlay
from tlstudio.core.models.registry import get_entry
from tlstudio.core.models.transfer_model import build_model
from tlstudio.core.store.runs import RunDir
from tlstudio.core.training import engine
from tlstudio.core.training.config import TrainConfig
from tlstudio.demo_audio import make_sound_folder


class TopLeftModel(nn.Module):
    """Class 0's logit is the brightness of the top-left quarter: that is all it looks at."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h, w = x.shape[-2] // 2, x.shape[-1] // 2
        score = x[:, :, :h, :w].mean(dim=(1, 2, 3)) * 10
        return torch.stack([score, torch.zeros_like(score)], dim=1)


def test_occlusion_lights_up_the_region_the_model_depends_on() -> None:
    x = torch.full((1, 3, 128, 128), 0.1)  # not saturated: hiding part of the quarter lowers class 0
    heat = occlusion(TopLeftModel(), x, target=0)
    assert heat.shape == (128, 128)
    inside, outside = float(heat[:48, :48].mean()), float(heat[80:, 80:].mean())
    assert inside > 0.01 and abs(outside) < 1e-6


def test_grad_cam_gives_a_map_the_size_of_the_input() -> None:
    model = build_model(get_entry("mobilenet_v3_small"), 3).eval()
    heat = grad_cam(model, torch.rand(1, 3, 224, 224), target=1)
    assert heat.shape == (224, 224) and torch.isfinite(heat).all() and float(heat.min()) >= 0


def test_the_colour_scale_and_overlay_keep_the_picture_where_nothing_matters() -> None:
    scale = colour(np.linspace(0, 1, 5)[None])
    assert scale.shape == (1, 5, 3) and scale[0, 0].sum() < scale[0, -1].sum()


def test_explain_writes_a_picture_for_a_photo_run_and_names_wrong_classes(shapes_dir: Path, tmp_path: Path,
                                                                        capsys) -> None:
    config = TrainConfig(data=str(shapes_dir), backbone="mobilenet_v3_small", pretrained="none", epochs=1)
    engine.train(scan(shapes_dir), config, RunDir.create(tmp_path / "run", config.backbone), lambda _e: None)
    image = sorted((shapes_dir / "squares").iterdir())[0]
    out = tmp_path / "map.png"
    assert main(["explain", str(tmp_path / "run"), str(image), "--out", str(out), "--target", "squares"]) == 0
    assert "squares" in capsys.readouterr().out
    with Image.open(out) as picture:
        assert picture.size == (2 * 224 + 12, 224 + 34)
    assert main(["explain", str(tmp_path / "run"), str(image), "--out", str(out), "--target", "cats"]) == 3
    assert "not a class of this model" in capsys.readouterr().err
    explanation = explain(RunDir.open(tmp_path / "run"), image)
    assert overlay(explanation).shape == explanation.picture.shape


def test_a_sound_run_is_explained_on_its_spectrogram(tmp_path: Path) -> None:
    data = make_sound_folder(tmp_path / "tones", per_class=8, seed=3)
    config = TrainConfig(data=str(data), backbone="mobilenet_v3_small", pretrained="none", epochs=1)
    engine.train(scan(data), config, RunDir.create(tmp_path / "run", config.backbone), lambda _e: None)
    clip = sorted((data / "chirp").iterdir())[0]
    explanation = explain(RunDir.open(tmp_path / "run"), clip)
    assert explanation.method.startswith("gradient x input on the spectrogram")
    assert explanation.heat.shape == explanation.picture.shape[:2]
    assert np.isfinite(explanation.heat).all() and explanation.heat.max() <= 1.0
