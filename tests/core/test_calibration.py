"""Calibrated confidence: the temperature fit, the calibration error, and the temperature travelling with the
model into Evaluate, predict and exports."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from tlstudio.cli import main
from tlstudio.core.data.scan import scan
from tlstudio.core.errors import RunError
from tlstudio.core.inference.calibration import (
    calibrate,
    expected_calibration_error,
    fit_temperature,
    pooled,
    reliability,
    sharpen,
)
from tlstudio.core.inference.predict import UNKNOWN, Prediction, Predictor
from tlstudio.core.models.saved import check_payload, load_model
from tlstudio.core.store.runs import RunDir
from tlstudio.core.training import engine
from tlstudio.core.training.config import TrainConfig


def _overconfident(n: int = 3000, classes: int = 4, true_t: float = 3.0, seed: int = 0):
    """Labels drawn from softmax(z); the model states softmax(z * true_t): calibrated at T = true_t."""
    generator = torch.Generator().manual_seed(seed)
    z = torch.randn(n, classes, generator=generator) * 1.5
    labels = torch.multinomial(z.softmax(dim=1), 1, generator=generator).squeeze(1)
    return z * true_t, labels


def test_the_fit_recovers_a_known_temperature_and_lowers_the_error() -> None:
    logits, labels = _overconfident()
    assert fit_temperature(logits, None, labels) == pytest.approx(3.0, rel=0.1)
    result = calibrate(logits, None, labels)
    assert result["applied"] and result["ece_after"] < result["ece_before"] / 3
    assert sum(row["count"] for row in result["reliability_after"]) == len(labels)


def test_the_calibration_error_is_the_weighted_gap_between_confidence_and_accuracy() -> None:
    # two files at confidence 0.9 (one right), two at 0.6 (both right): |0.5-0.9|*0.5 + |1-0.6|*0.5 = 0.4
    probabilities = torch.tensor([[0.9, 0.1], [0.9, 0.1], [0.6, 0.4], [0.4, 0.6]])
    labels = torch.tensor([0, 1, 0, 1])
    assert expected_calibration_error(probabilities, labels) == pytest.approx(0.4)
    rows = reliability(probabilities, labels)
    assert [(r["count"], r["accuracy"]) for r in rows] == [(2, 1.0), (2, 0.5)]


def test_the_temperature_never_changes_which_class_wins_a_clip() -> None:
    generator = torch.Generator().manual_seed(3)
    windows = torch.randn(300, 4, generator=generator) * 4  # 100 clips of 3 windows that disagree
    groups = [3] * 100
    plain = pooled(windows, groups).argmax(dim=1)
    for temperature in (0.2, 0.5, 2.0, 5.0):
        assert torch.equal(pooled(windows, groups, temperature).argmax(dim=1), plain)


def test_long_clips_are_calibrated_on_their_pooled_probabilities() -> None:
    logits, labels = _overconfident(n=600)
    windows = logits.repeat_interleave(3, dim=0)  # each clip: three identical windows
    groups = [3] * len(labels)
    assert torch.allclose(pooled(windows, groups, 2.0), pooled(logits, None, 2.0), atol=1e-6)
    assert fit_temperature(windows, groups, labels) == pytest.approx(fit_temperature(logits, None, labels), rel=1e-3)


def test_a_temperature_that_does_not_help_on_held_out_halves_is_not_applied() -> None:
    generator = torch.Generator().manual_seed(1)
    logits = torch.randn(40, 3, generator=generator) * 0.01  # near-uniform: nothing to fit
    labels = torch.randint(0, 3, (40,), generator=generator)
    result = calibrate(logits, None, labels)
    assert result["ece_after"] <= result["ece_before"] and (result["applied"] or result["temperature"] == 1.0)
    few = calibrate(logits[:8], None, labels[:8])
    assert few["temperature"] == 1.0 and not few["applied"]


def test_a_run_ships_its_temperature_to_predict_evaluate_and_the_export(shapes_dir: Path, tmp_path: Path,
                                                                       capsys) -> None:
    config = TrainConfig(data=str(shapes_dir), backbone="mobilenet_v3_small", pretrained="none", epochs=2,
                         batch_size=16, val_split=0.3)
    metrics = engine.train(scan(shapes_dir), config, RunDir.create(tmp_path / "run", config.backbone),
                           lambda _e: None)
    calibration = metrics["calibration"]
    assert calibration["temperature"] > 0 and calibration["ece_after"] <= calibration["ece_before"]
    saved = json.loads((tmp_path / "run" / "metrics.json").read_text())["calibration"]
    assert saved["temperature"] == calibration["temperature"]

    run = RunDir.open(tmp_path / "run")
    model, _, _ = load_model(run)
    assert model.temperature == pytest.approx(calibration["temperature"])
    # the shipped probabilities are softmax(log p / T) of the plain ones: for a photo softmax(logits / T)
    image = sorted((shapes_dir / "circles").iterdir())[0]
    predictor = Predictor(run)
    predictor.model.temperature = 1.0
    plain, _ = predictor.probabilities([image])
    predictor.model.temperature = 2.5
    hot, _ = predictor.probabilities([image])
    assert torch.allclose(hot, sharpen(plain, 2.5), atol=1e-6) and int(hot.argmax()) == int(plain.argmax())
    x = torch.randn(4, 3)
    assert torch.allclose(sharpen(x.softmax(dim=1), 2.5), (x / 2.5).softmax(dim=1), atol=1e-6)

    assert main(["export", str(tmp_path / "run"), "--format", "torchscript", "--out", str(tmp_path / "ts")]) == 0
    sidecar = json.loads((tmp_path / "ts" / "model.json").read_text())
    assert sidecar["output"]["temperature"] == pytest.approx(calibration["temperature"])

    # --keep-unfamiliar: only the confidence test here (the familiarity test flags ~5% of real files too)
    assert main(["predict", str(tmp_path / "run"), str(image), "--min-confidence", "1.0", "--keep-unfamiliar"]) == 0
    assert ": unknown (not sure" in capsys.readouterr().out
    assert main(["predict", str(tmp_path / "run"), str(image), "--min-confidence", "0", "--keep-unfamiliar"]) == 0
    assert "unknown" not in capsys.readouterr().out
    assert main(["predict", str(tmp_path / "run"), str(image), "--min-confidence", "1.5"]) == 2
    top = Predictor(run).predict([image])[0]
    assert top.verdict(0.0, reject_unfamiliar=False) == top.top[0][0] and top.verdict(1.01) == UNKNOWN


def test_a_tampered_temperature_is_refused() -> None:
    payload = {"classes": ["a", "b"], "backbone": "x", "head": "linear",
               "pipeline": {"preprocess": {"resize": 256, "crop": 224, "mean": [0.5] * 3, "std": [0.2] * 3,
                                           "interpolation": "bilinear"}}}
    check_payload(payload, "model.pt")
    for bad in (0.0, float("nan"), -1.0, 1e9, True):
        with pytest.raises(RunError, match="temperature"):
            check_payload({**payload, "temperature": bad}, "model.pt")


def test_an_unreadable_prediction_has_no_verdict() -> None:
    assert Prediction("x.jpg", [], "not an image").verdict(0.5) == ""
