"""Round trips: export, reload outside the studio, same predictions as the studio.

Tolerance: top-1 identical on every validation file; class probabilities within 1e-4 (float rounding
between eager PyTorch, TorchScript and ONNX Runtime).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import pytest
import torch
from PIL import Image

from tlstudio.core.data.scan import scan
from tlstudio.core.data.spec import DatasetSpec
from tlstudio.core.inference.export import export_run
from tlstudio.core.inference.predict import Predictor
from tlstudio.core.store.runs import RunDir
from tlstudio.core.training import engine
from tlstudio.core.training.config import TrainConfig
from tlstudio.demo_audio import make_sound_folder

TOLERANCE = 1e-4


@pytest.fixture(scope="module")
def image_run(shapes_dir: Path, tmp_path_factory) -> RunDir:
    out = tmp_path_factory.mktemp("runs") / "image"
    config = TrainConfig(data=str(shapes_dir), backbone="mobilenet_v3_small", pretrained="none", epochs=2,
                         unfreeze="1", augment="light", cache_features=False)
    engine.train(scan(shapes_dir), config, RunDir.create(out, config.backbone), lambda _e: None)
    return RunDir.open(out)


def _val_paths(run: RunDir) -> list[str]:
    return [s.path for s in DatasetSpec.from_dict(run.read_json("dataset.json")).val]


def _pixels(path: str) -> np.ndarray:
    """What a user outside the studio does: decode, scale to [0, 1], channels first."""
    return (np.asarray(Image.open(path).convert("RGB"), dtype=np.float32) / 255.0).transpose(2, 0, 1)[None]


def test_torchscript_and_onnx_predict_like_the_studio(image_run: RunDir, tmp_path: Path) -> None:
    import onnxruntime as ort

    paths = _val_paths(image_run)
    studio, _ = Predictor(image_run).probabilities(paths)
    scripted = torch.jit.load(str(export_run(image_run, "torchscript", tmp_path / "ts")))
    onnx_file = export_run(image_run, "onnx", tmp_path / "onnx")
    onnx.checker.check_model(onnx.load(str(onnx_file)))
    session = ort.InferenceSession(str(onnx_file))
    for index, path in enumerate(paths):
        x = _pixels(path)
        with torch.no_grad():
            ts = scripted(torch.from_numpy(x))[0]
        ox = torch.from_numpy(session.run(None, {"images": x})[0][0])
        assert int(ts.argmax()) == int(studio[index].argmax()) == int(ox.argmax()), path
        assert float((ts - studio[index]).abs().max()) < TOLERANCE
        assert float((ox - studio[index]).abs().max()) < TOLERANCE
    batch = np.concatenate([_pixels(paths[0])[:, :, :50, :60], _pixels(paths[0])[:, :, :50, :60]])
    assert session.run(None, {"images": batch})[0].shape == (2, 3)  # any size, any batch


def test_the_sidecar_and_snippet_work_without_the_studio(image_run: RunDir, tmp_path: Path) -> None:
    export_run(image_run, "onnx", tmp_path)
    spec = json.loads((tmp_path / "model.json").read_text())
    assert spec["classes"] == ["circles", "squares", "triangles"]
    assert spec["input"]["range"] == [0.0, 1.0] and spec["input"]["any_size"]
    assert spec["created_with"]["tlstudio"] and "val_accuracy" in spec["metrics"]
    path = _val_paths(image_run)[0]
    result = subprocess.run([sys.executable, str(tmp_path / "predict.py"), path], capture_output=True, text=True,
                            cwd=tmp_path, env={"PATH": "/usr/bin:/bin"})
    assert result.returncode == 0, result.stderr
    top = Predictor(image_run).predict([path])[0].top[0][0]
    assert result.stdout.startswith(f"{path}: {top} ")


def test_a_sound_model_exports_with_its_spectrogram(tmp_path: Path) -> None:
    data = make_sound_folder(tmp_path / "sounds", per_class=6, seed=4)
    config = TrainConfig(data=str(data), backbone="mobilenet_v3_small", pretrained="none", epochs=1,
                         cache_features=False)
    engine.train(scan(data, check_file="auto"), config, RunDir.create(tmp_path / "run", config.backbone),
                 lambda _e: None)
    run = RunDir.open(tmp_path / "run")
    scripted = torch.jit.load(str(export_run(run, "torchscript", tmp_path / "ts")))
    spec = json.loads((tmp_path / "ts" / "model.json").read_text())
    assert spec["input"]["sample_rate"] == 16000 and "log-mel spectrogram" in spec["input"]["included_preprocessing"]
    import onnxruntime as ort

    from tlstudio.core.media.audio import load_mono

    session = ort.InferenceSession(str(export_run(run, "onnx", tmp_path / "onnx")))
    paths = _val_paths(run)
    studio, _ = Predictor(run).probabilities(paths)
    for index, path in enumerate(paths):
        wave = load_mono(path, 16000).unsqueeze(0)
        with torch.no_grad():
            out = scripted(wave)[0]
        ox = torch.from_numpy(session.run(None, {"waveform": wave.numpy()})[0][0])
        assert int(out.argmax()) == int(studio[index].argmax()) == int(ox.argmax())
        assert float((out - studio[index]).abs().max()) < TOLERANCE
        assert float((ox - studio[index]).abs().max()) < TOLERANCE
