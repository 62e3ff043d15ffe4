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


def _odd_images(source: str, folder: Path) -> list[Path]:
    """What phones and scanners make: EXIF-rotated JPEGs, transparent PNGs, 16-bit greyscale."""
    folder.mkdir(parents=True, exist_ok=True)
    out = []
    with Image.open(source) as image:
        rgb = image.convert("RGB")
    for n, orientation in enumerate((6, 8, 3)):
        exif = Image.Exif()
        exif[0x0112] = orientation
        path = folder / f"phone {n}.jpg"
        rgb.resize((120, 80)).save(path, exif=exif, quality=92)
        out.append(path)
    rgba = rgb.convert("RGBA")
    alpha = Image.new("L", rgba.size, 255)
    alpha.paste(0, (0, 0, rgba.size[0] // 2, rgba.size[1]))  # the left half transparent
    rgba.putalpha(alpha)
    rgba.save(folder / "transparent.png")
    out.append(folder / "transparent.png")
    grey = (np.asarray(rgb.convert("L"), dtype=np.uint16) * 180 + 3000).astype(np.uint16)
    Image.fromarray(grey).save(folder / "sixteen-bit.png")
    out.append(folder / "sixteen-bit.png")
    rgb.convert("P", palette=Image.Palette.ADAPTIVE).save(folder / "palette.png", transparency=0)
    out.append(folder / "palette.png")
    rgb.convert("CMYK").save(folder / "cmyk.jpg")
    out.append(folder / "cmyk.jpg")
    return out


def test_odd_images_predict_the_same_in_the_export_as_in_the_studio(image_run: RunDir, tmp_path: Path) -> None:
    """EXIF turns, transparency, 16-bit, palette and CMYK reach the exported model exactly as the studio's."""
    import importlib.util

    import onnxruntime as ort

    files = _odd_images(_val_paths(image_run)[0], tmp_path / "odd")
    export_run(image_run, "onnx", tmp_path / "onnx")
    studio, errors = Predictor(image_run).probabilities(files)
    assert not errors
    spec = importlib.util.spec_from_file_location("tlstudio_decode", tmp_path / "onnx" / "tlstudio_decode.py")
    decode = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(decode)
    session = ort.InferenceSession(str(tmp_path / "onnx" / "model.onnx"))
    for index, path in enumerate(files):
        x = decode.image_array(decode.open_rgb(str(path)))[None]
        exported = torch.from_numpy(session.run(None, {"images": x})[0][0])
        assert float((exported - studio[index]).abs().max()) < TOLERANCE, path.name
    with Image.open(files[0]) as turned:  # orientation 6: the decoded picture stands upright (80 x 120)
        assert decode.open_rgb(str(files[0])).size == (80, 120) and turned.size == (120, 80)
    result = subprocess.run([sys.executable, str(tmp_path / "onnx" / "predict.py"), *map(str, files)],
                            capture_output=True, text=True, env={"PATH": "/usr/bin:/bin"})
    assert result.returncode == 0, result.stderr
    for index, line in enumerate(result.stdout.splitlines()):
        top = image_run.read_json("labels.json")["classes"][int(studio[index].argmax())]
        assert line.split(": ", 1)[1].startswith(f"{top} "), line


def test_a_sound_model_exports_with_its_spectrogram(tmp_path: Path) -> None:
    data = make_sound_folder(tmp_path / "sounds", per_class=6, seed=4)
    config = TrainConfig(data=str(data), backbone="mobilenet_v3_small", pretrained="none", epochs=1,
                         cache_features=False)
    engine.train(scan(data, check_file="auto"), config, RunDir.create(tmp_path / "run", config.backbone),
                 lambda _e: None)
    run = RunDir.open(tmp_path / "run")
    # a confidence temperature, applied after the windows are pooled, in the studio and in both graphs
    run.save_torch("model.pt", {**run.load_torch("model.pt"), "temperature": 0.5})
    scripted = torch.jit.load(str(export_run(run, "torchscript", tmp_path / "ts")))
    spec = json.loads((tmp_path / "ts" / "model.json").read_text())
    assert spec["output"]["temperature"] == 0.5
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
    # a stereo 44.1 kHz recording of 2.3 s through the shipped predict.py: resampled and windowed as in the studio
    import soundfile as sf

    wave = load_mono(paths[0], 44100).numpy()
    long = np.concatenate([wave, wave, wave[: len(wave) // 3]])
    sf.write(str(tmp_path / "stereo.wav"), np.stack([long, long * 0.5], axis=1), 44100)
    studio_long, _ = Predictor(run).probabilities([tmp_path / "stereo.wav"])
    result = subprocess.run([sys.executable, str(tmp_path / "onnx" / "predict.py"), str(tmp_path / "stereo.wav")],
                            capture_output=True, text=True, env={"PATH": "/usr/bin:/bin"})
    assert result.returncode == 0, result.stderr
    printed = result.stdout.split(": ", 1)[1].split(", ")[0].split()
    assert printed[0] == spec["classes"][int(studio_long[0].argmax())]
    assert abs(float(printed[1]) - float(studio_long[0].max())) < 1e-3  # printed with 3 decimals


def test_the_confidence_temperature_is_inside_the_exported_graph(image_run: RunDir, tmp_path: Path) -> None:
    import shutil

    import onnxruntime as ort

    run = RunDir.open(shutil.copytree(image_run.path, tmp_path / "hot"))
    paths = _val_paths(run)[:3]
    before, _ = Predictor(run).probabilities(paths)
    payload = run.load_torch("model.pt")
    run.save_torch("model.pt", {**payload, "temperature": 2.0})
    studio, _ = Predictor(run).probabilities(paths)
    assert float((studio - before).abs().max()) > 1e-3  # the temperature changes what users are shown
    session = ort.InferenceSession(str(export_run(run, "onnx", tmp_path / "onnx")))
    assert json.loads((tmp_path / "onnx" / "model.json").read_text())["output"]["temperature"] == 2.0
    scripted = torch.jit.load(str(export_run(run, "torchscript", tmp_path / "ts")))
    for index, path in enumerate(paths):
        ox = torch.from_numpy(session.run(None, {"images": _pixels(path)})[0][0])
        assert float((ox - studio[index]).abs().max()) < TOLERANCE
        with torch.no_grad():
            ts = scripted(torch.from_numpy(_pixels(path)))[0]
        assert float((ts - studio[index]).abs().max()) < TOLERANCE
