"""Regression targets from labels.csv: scan, training (frozen and fine-tuned), metrics, predict, evaluate,
export, on generated pictures whose value is their brightness and generated tones (random weights)."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from tests.helpers import tree_digest
from tlstudio.core.data.scan import scan
from tlstudio.core.errors import DataError
from tlstudio.core.inference.evaluation import evaluate_run
from tlstudio.core.inference.predict import Predictor
from tlstudio.core.store.runs import RunDir
from tlstudio.core.training import engine
from tlstudio.core.training.config import TrainConfig

SMALL = dict(backbone="mobilenet_v3_small", pretrained="none", batch_size=16)


def brightness_folder(root: Path, files: int = 48, seed: int = 0) -> Path:
    """Noisy pictures in a nested folder; labels.csv gives each its brightness (0 to 10)."""
    rng = np.random.default_rng(seed)
    (root / "pics" / "a").mkdir(parents=True)
    rows = ["file,brightness"]
    for i in range(files):
        level = float(rng.uniform(0, 10))
        pixels = np.clip(rng.normal(level * 25, 20, (64, 64, 3)), 0, 255).astype(np.uint8)
        Image.fromarray(pixels).save(root / "pics" / "a" / f"p{i:03d}.png")
        rows.append(f"pics/a/p{i:03d}.png,{level:.4f}")
    (root / "labels.csv").write_text("\n".join(rows) + "\n")
    return root


@pytest.fixture(scope="module")
def bright(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return brightness_folder(tmp_path_factory.mktemp("bright"))


def train(data: Path, out: Path, **overrides):
    config = TrainConfig(data=str(data), **{**SMALL, **overrides})
    spec = scan(data, val_split=0.25, seed=0, check_file="auto", group_by="none", task=config.task)
    events: list = []
    metrics = engine.train(spec, config, RunDir.create(out, config.backbone), events.append)
    return metrics, events, spec


def test_labels_csv_of_numbers_is_a_regression_with_named_problems(tmp_path: Path) -> None:
    root = brightness_folder(tmp_path / "d", files=20)
    Image.new("RGB", (8, 8)).save(root / "unlisted.png")
    with open(root / "labels.csv", "a") as handle:
        handle.write("gone.png,3\npics/a/p000.png,4\n")
    spec = scan(root, val_split=0.25, check_file="auto", group_by="none")
    assert spec.task == "regression" and spec.classes == ["brightness"]
    assert {s.label for s in spec.train + spec.val} == {0}
    assert all(isinstance(s.value, float) for s in spec.train + spec.val)
    assert len(spec.train) + len(spec.val) == 20 and spec.val
    assert spec.target["min"] >= 0 and spec.target["std"] > 0
    assert [Path(s.path).name for s in spec.skipped] == ["gone.png"]
    assert any("unlisted.png" in w for w in spec.warnings)  # files not in the table are named
    assert any("a second time" in w for w in spec.warnings)
    with pytest.raises(DataError, match=r"labels\.csv"):
        scan(tmp_path / "d" / "pics", task="regression")  # no table there


def test_text_labels_make_classes_and_regression_refuses_them(tmp_path: Path) -> None:
    root = brightness_folder(tmp_path / "d", files=12)
    lines = (root / "labels.csv").read_text().splitlines()
    text = [lines[0].replace("brightness", "label")] + [
        f"{line.split(',')[0]},{'dark' if float(line.split(',')[1]) < 5 else 'light'}" for line in lines[1:]]
    (root / "labels.csv").write_text("\n".join(text) + "\n")
    spec = scan(root, val_split=0.25, check_file="auto", group_by="none")
    assert spec.task == "classification" and spec.classes == ["dark", "light"]
    with pytest.raises(DataError, match="number for every file"):
        scan(root, task="regression")
    numbers = brightness_folder(tmp_path / "n", files=12)
    forced = scan(numbers, task="classification", group_by="none")  # numbers read as class names
    assert forced.task == "classification" and len(forced.classes) == 12


def test_value_token_in_file_names_is_not_taken_for_a_source(tmp_path: Path) -> None:
    """7_jackson_0.wav: with strata standing in for classes, the digit is seen as the value in disguise."""
    root = tmp_path / "digits"
    root.mkdir()
    rows = ["file,value"]
    rng = np.random.default_rng(1)
    for digit in range(4):
        for speaker in ("ann", "bob", "cat", "dan"):
            for take in range(3):
                name = f"{digit}_{speaker}_{take}.png"
                Image.fromarray(rng.integers(0, 255, (16, 16, 3), dtype=np.uint8)).save(root / name)
                rows.append(f"{name},{digit}")
    (root / "labels.csv").write_text("\n".join(rows) + "\n")
    spec = scan(root, val_split=0.25, check_file="auto", group_by="auto")
    assert "speaker" in spec.grouping["rule"] or "name" in spec.grouping["rule"]
    val_values = {s.value for s in spec.val}
    assert val_values == {0.0, 1.0, 2.0, 3.0}  # every value validated, whole speakers held out


def test_frozen_regression_trains_scores_predicts_and_evaluates(bright: Path, tmp_path: Path) -> None:
    before = tree_digest(bright)
    # real ImageNet features (random ones carry no usable brightness signal for a linear head)
    metrics, events, spec = train(bright, tmp_path / "run", epochs=30, lr=0.03, backbone="mobilenet_v2",
                                  pretrained="imagenet")
    out = tmp_path / "run"
    assert metrics["task"] == "regression" and metrics["fast_path"]
    for key in ("val_mae", "val_rmse", "val_r2", "mae_guessing_the_mean", "largest_errors"):
        assert metrics[key] is not None, key
    assert metrics["val_mae"] < metrics["mae_guessing_the_mean"]  # it learnt the brightness
    assert "calibration" not in metrics and "val_accuracy" not in metrics
    with open(out / "history.csv") as handle:
        rows = list(csv.DictReader(handle))
    assert "val_mae" in rows[0] and "val_acc" not in rows[0]
    epochs = [e for e in events if type(e).__name__ == "EpochEnd"]
    assert {e.score_name for e in epochs} == {"mae"}
    best = min(float(r["val_mae"]) for r in rows)
    assert metrics["val_mae"] == pytest.approx(best, abs=1e-4)  # the best epoch is the lowest error
    predictions = RunDir.open(out).read_table("predictions.tsv")
    assert set(predictions[0]) == {"path", "true", "predicted", "error"} and len(predictions) == len(spec.val)
    predictor = Predictor(RunDir.open(out))
    assert predictor.regression and predictor.classes == ["brightness"]
    results = predictor.predict([s.path for s in spec.val])
    table = {row["path"]: float(row["predicted"]) for row in predictions}
    for result in results:
        assert result.top == [] and result.value == pytest.approx(table[result.path], abs=1e-3)
        assert result.verdict(0.99, reject_unfamiliar=False) == f"{result.value:.4g}"  # no confidence to fail
    own, _ = evaluate_run(RunDir.open(out))
    assert own["task"] == "regression" and own["mae"] == pytest.approx(metrics["val_mae"], abs=1e-4)
    other, _ = evaluate_run(RunDir.open(out), bright)
    assert other["files"] == len(spec.train) + len(spec.val) and other["trained_val_mae"] == metrics["val_mae"]
    assert tree_digest(bright) == before  # the user's folder is only read


def test_fine_tuned_regression_and_exports_give_the_value_in_its_unit(bright: Path, tmp_path: Path) -> None:
    from tlstudio.core.inference.export import export_run
    from tlstudio.core.media.portable import image_array, open_rgb

    metrics, _, spec = train(bright, tmp_path / "run", epochs=1, unfreeze="1")
    assert metrics["task"] == "regression" and not metrics["fast_path"]
    run = RunDir.open(tmp_path / "run")
    predictor = Predictor(run)
    path = spec.val[0].path
    studio = predictor.predict([path])[0].value
    ts = export_run(run, "torchscript", tmp_path / "ts")
    sidecar = json.loads((tmp_path / "ts" / "model.json").read_text())
    assert sidecar["task"] == "regression" and sidecar["output"]["kind"] == "value"
    assert sidecar["output"]["target"]["std"] == pytest.approx(spec.target["std"], rel=1e-5)
    model = torch.jit.load(str(ts))
    with torch.no_grad():
        exported = float(model(torch.from_numpy(image_array(open_rgb(path))[None]))[0, 0])
    assert exported == pytest.approx(studio, abs=1e-3)
    assert "val_mae" in sidecar["metrics"]


def test_sound_regression_pools_windows_and_exports_match(tmp_path: Path) -> None:
    """Tones whose value is their pitch in kHz; a 2.5 s clip is scored over windows, averaged."""
    import soundfile as sf

    from tlstudio.core.inference.export import export_run

    root = tmp_path / "tones"
    root.mkdir()
    rows = ["file,khz"]
    rng = np.random.default_rng(3)
    for i in range(24):
        khz = float(rng.uniform(0.3, 3.0))
        seconds = 2.5 if i % 6 == 0 else 1.0
        t = np.arange(int(16000 * seconds)) / 16000
        sf.write(root / f"t{i}.wav", (0.3 * np.sin(2 * np.pi * khz * 1000 * t)).astype(np.float32), 16000)
        rows.append(f"t{i}.wav,{khz:.4f}")
    (root / "labels.csv").write_text("\n".join(rows) + "\n")
    metrics, _, spec = train(root, tmp_path / "run", epochs=2, backbone="mobilenet_v3_small", unfreeze="0")
    assert spec.modality == "audio" and metrics["task"] == "regression" and metrics["val_mae"] is not None
    run = RunDir.open(tmp_path / "run")
    long_clip = next(s.path for s in spec.train + spec.val if s.path.endswith("t0.wav"))
    studio = Predictor(run).predict([long_clip])[0].value
    ts = export_run(run, "torchscript", tmp_path / "ts")
    wave, _rate = sf.read(long_clip, dtype="float32")
    with torch.no_grad():
        exported = float(torch.jit.load(str(ts))(torch.from_numpy(wave)[None])[0, 0])
    assert exported == pytest.approx(studio, abs=1e-3)
