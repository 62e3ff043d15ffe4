"""Exports that predict exactly like the studio: the preprocessing is inside the exported model.

Input contract (also written to the sidecar JSON):
- images: float tensor (N, 3, H, W), RGB, values in [0, 1], any H and W; the model resizes the short side,
  centre-crops and normalises as in training, and returns class probabilities (N, classes);
- sound: float waveform (N, samples) at the sidecar's sample rate, any length; the model cuts it into
  the training window (sliding windows for long clips), builds the log-mel spectrogram and returns the
  probabilities averaged over windows.
Formats: TorchScript (`torch.jit.load`), ONNX (`onnxruntime`), and checkpoint (tensors only).
"""

from __future__ import annotations

import json
import shutil
import warnings
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from tlstudio import __version__
from tlstudio.core.data.pipelines import AudioPipeline, ImagePipeline
from tlstudio.core.errors import ConfigError, RunError, StorageError, StudioError
from tlstudio.core.inference.calibration import calibrated
from tlstudio.core.models.saved import load_model
from tlstudio.core.store.runs import RunDir

FORMATS = ("torchscript", "onnx", "checkpoint")


class ExportError(StudioError):
    exit_code = 7


class ImageClassifier(nn.Module):
    """(N, 3, H, W) in [0, 1] -> probabilities; resize + crop + normalise inside."""

    def __init__(self, core: nn.Module, resize: int, crop: int, mean: tuple, std: tuple, mode: str) -> None:
        super().__init__()
        self.core = core
        self.resize = resize
        self.crop = crop
        self.mode = mode
        self.register_buffer("mean", torch.tensor(mean).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor(std).view(1, 3, 1, 1))
        self.temperature = float(getattr(core, "temperature", 1.0))
        self.regression = bool(getattr(core, "regression", False))  # then the output is the value itself

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        # The region that "resize the short side to `resize`, centre-crop `crop`" keeps, in input pixels,
        # resized straight to crop x crop: the network then sees a fixed size (ONNX keeps H, W free).
        h, w = images.shape[-2], images.shape[-1]
        if torch.jit.is_scripting():
            side = max(min(h, w) * self.crop // self.resize, 1)
        else:
            side = torch.sym_max(torch.sym_min(h, w) * self.crop // self.resize, 1)
        top = (h - side) // 2
        left = (w - side) // 2
        region = images.narrow(2, top, side).narrow(3, left, side)
        x = F.interpolate(region, size=(self.crop, self.crop), mode=self.mode, antialias=True, align_corners=False)
        x = (x.clamp(0.0, 1.0) - self.mean) / self.std
        outputs = self.core(x)
        if self.regression:
            return outputs
        return calibrated(outputs.softmax(dim=1), self.temperature)


class SoundClassifier(nn.Module):
    """(N, samples) at the sidecar's rate -> probabilities averaged over sliding windows."""

    def __init__(self, core: nn.Module, window: int, hop: int, classes: int) -> None:
        super().__init__()
        self.core = core
        self.window = window
        self.hop = hop
        self.classes = classes
        self.temperature = float(getattr(core, "temperature", 1.0))
        self.regression = bool(getattr(core, "regression", False))  # then windows' values are averaged

    def forward(self, waves: torch.Tensor) -> torch.Tensor:
        # the windows of media/portable.pad_for_windows: a short clip centred in one window; a long one
        # padded at the end so the last window ends at (or just past) the clip's end, none repeated
        n, length = waves.shape[0], waves.shape[-1]
        if torch.jit.is_scripting():
            if n == 0:  # an empty batch: the spectrogram's reflect padding cannot take it
                return torch.zeros(0, self.classes, dtype=waves.dtype)
            short = max(self.window - length, 0)
            extra = (self.hop - (max(length - self.window, 0) % self.hop)) % self.hop
        else:  # symbolic, so ONNX keeps the length free
            short = torch.sym_max(self.window - length, 0)
            extra = (self.hop - (torch.sym_max(length - self.window, 0) % self.hop)) % self.hop
        waves = F.pad(waves, (short // 2, short - short // 2 + extra))
        windows = waves.unfold(-1, self.window, self.hop)
        count = windows.shape[1]
        outputs = self.core(windows.reshape(n * count, self.window))
        if self.regression:
            return outputs.reshape(n, count, -1).mean(dim=1)
        probabilities = outputs.softmax(dim=1)
        return calibrated(probabilities.reshape(n, count, -1).mean(dim=1), self.temperature)


def _wrap(model: nn.Module, pipeline: ImagePipeline | AudioPipeline) -> nn.Module:
    if isinstance(pipeline, ImagePipeline):
        pre = pipeline.preprocess
        wrapped: nn.Module = ImageClassifier(model, pre.resize, pre.crop, pre.mean, pre.std, pre.interpolation)
    else:
        settings = pipeline.settings
        wrapped = SoundClassifier(model, settings.window, settings.hop, int(model.head_classes()))
    return wrapped.eval()


def output_spec(model: nn.Module, classes: list[str], fmt: str) -> dict[str, Any]:
    """What the exported model returns, for the sidecar."""
    if model.regression:
        target = {"mean": float(model.head.target_mean), "std": float(model.head.target_std)}
        return {"shape": ["N", 1], "kind": "value", "name": classes[0],
                "meaning": f"the predicted {classes[0]}, in the unit of labels.csv (for sound, the mean over "
                           "windows): the network learnt standardised values, and the model multiplies by "
                           "`target.std` and adds `target.mean` inside" +
                           ("" if fmt != "checkpoint" else " (the studio's ValueHead does this)"),
                "target": target}
    return {"shape": ["N", len(classes)], "kind": "probabilities",
            "meaning": "class probabilities (softmax), in `classes` order",
            "temperature": model.temperature,
            "calibration": ("inside the model, after any pooling of windows: softmax(log(p) / temperature) "
                            "(fitted on validation), so these probabilities are the calibrated ones"
                            if fmt != "checkpoint" else
                            "model.pt keeps `temperature`; the studio applies softmax(log(p) / temperature) "
                            "after pooling windows (a plain load_state_dict does not)")}


def input_spec(pipeline: ImagePipeline | AudioPipeline) -> dict[str, Any]:
    if isinstance(pipeline, ImagePipeline):
        pre = pipeline.preprocess
        return {"kind": "image", "shape": ["N", 3, "H", "W"], "dtype": "float32", "range": [0.0, 1.0],
                "channels": "RGB", "any_size": True, "included_preprocessing": [
                    f"resize short side to {pre.resize} ({pre.interpolation}, antialiased)",
                    f"centre crop {pre.crop}x{pre.crop}", f"normalise mean={list(pre.mean)} std={list(pre.std)}"]}
    settings = pipeline.settings
    return {"kind": "audio", "shape": ["N", "samples"], "dtype": "float32", "sample_rate": settings.sample_rate,
            "mono": True, "any_length": True, "included_preprocessing": [
                f"windows of {settings.window_seconds} s every {settings.hop_seconds} s (probabilities averaged)",
                *(["log-mel spectrogram"] if pipeline.frontend_kind == "logmel" else [])]}


def _example(pipeline: ImagePipeline | AudioPipeline) -> torch.Tensor:
    if isinstance(pipeline, ImagePipeline):
        return torch.rand(2, 3, 300, 400)  # batch 2: a batch of 1 would be specialised to a constant
    return torch.randn(2, int(pipeline.settings.window * 1.7)) * 0.1


def export_run(run: RunDir, fmt: str, out: str | Path) -> Path:
    """Write the export, its sidecar JSON and a runnable snippet into the folder `out`."""
    if fmt not in FORMATS:
        raise ConfigError(f"--format takes one of {', '.join(FORMATS)}, not '{fmt}'.")
    out = Path(out).expanduser()
    if out.exists() and not out.is_dir():
        raise RunError(f"{out} is a file; an export is a folder (model, model.json, predict.py).",
                       "Give --out a folder name.")
    if out.resolve() == run.path or (out / "config.json").is_file():
        raise RunError(f"{out} is a run folder; exporting there would overwrite its files.",
                       "Export into a folder of its own, e.g. --out exported/.")
    model, classes, pipeline = load_model(run)
    try:
        out.mkdir(parents=True, exist_ok=True)
        return _write_export(run, fmt, out, model, classes, pipeline)
    except OSError as exc:
        raise StorageError(f"Cannot write the export into {out}: {exc.strerror or exc}.",
                           "Choose a writable folder with free space.") from exc
    except RuntimeError as exc:
        if "write" in str(exc).lower():  # torch's own writers report a full disk this way
            raise StorageError(f"Cannot write the export into {out} (disk full?).", "Free some space.") from exc
        raise


def _write_export(run: RunDir, fmt: str, out: Path, model, classes, pipeline) -> Path:
    wrapped = _wrap(model, pipeline)
    metrics = run.read_json("metrics.json") if run.file("metrics.json").is_file() else {}
    if fmt == "torchscript":
        name = "model.ts"
        _torchscript(wrapped, model, pipeline).save(str(out / name))
    elif fmt == "onnx":
        name = "model.onnx"
        _onnx(wrapped, pipeline, out / name)
    else:
        name = "model.pt"
        shutil.copy2(run.file("model.pt"), out / name)
    sidecar = {
        "format": fmt,
        "file": name,
        "classes": classes,
        "input": input_spec(pipeline),
        "output": output_spec(model, classes, fmt),
        "backbone": metrics.get("backbone"),
        "task": "regression" if model.regression else "classification",
        "metrics": {k: metrics.get(k) for k in (("val_mae", "val_rmse", "val_r2") if model.regression else
                                                ("val_accuracy", "macro_f1")) + ("val_loss", "epochs", "best_epoch")},
        "pipeline": pipeline.describe(),
        "created_with": {"tlstudio": __version__, "torch": torch.__version__},
        "run": str(run.path),
    }
    (out / "model.json").write_text(json.dumps(sidecar, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    (out / "predict.py").write_text(_snippet(fmt, pipeline, bool(model.regression)), encoding="utf-8")
    (out / "tlstudio_decode.py").write_text(portable_source(), encoding="utf-8")
    return out / name


def _torchscript(wrapped: nn.Module, model: nn.Module, pipeline: ImagePipeline | AudioPipeline):
    """Trace the network at its fixed input size; script the wrapper so input sizes stay free."""
    with torch.no_grad():
        if isinstance(pipeline, ImagePipeline):
            crop = pipeline.preprocess.crop
            core = torch.jit.trace(model, torch.rand(2, 3, crop, crop), check_trace=False)
        else:
            core = torch.jit.trace(model, torch.randn(2, pipeline.settings.window) * 0.1, check_trace=False)
    wrapped.core = core
    with warnings.catch_warnings():  # "torch.jit.script is deprecated": a note to developers, not to users
        warnings.simplefilter("ignore", DeprecationWarning)
        return torch.jit.script(wrapped)


def _onnx(wrapped: nn.Module, pipeline: ImagePipeline | AudioPipeline, path: Path) -> None:
    import onnx

    example = _example(pipeline)
    if isinstance(pipeline, ImagePipeline):
        dims = {0: torch.export.Dim("batch", max=4096), 2: torch.export.Dim("height", min=32, max=16384),
                3: torch.export.Dim("width", min=32, max=16384)}
        names = ["images"]
    else:
        dims = {0: torch.export.Dim("batch", max=4096),
                1: torch.export.Dim("samples", min=16, max=pipeline.settings.window * 3600)}
        names = ["waveform"]
    try:
        with warnings.catch_warnings():  # the exporter's notes to developers are not the user's news
            warnings.simplefilter("ignore", FutureWarning)
            warnings.simplefilter("ignore", DeprecationWarning)
            program = torch.onnx.export(wrapped, (example,), dynamo=True, input_names=names,
                                        output_names=["probabilities"], dynamic_shapes=(dims,), opset_version=18,
                                        verbose=False)
        program.save(str(path))
        onnx.checker.check_model(onnx.load(str(path)))
    except Exception as exc:  # the exporter's own errors are long and technical
        path.unlink(missing_ok=True)
        raise ExportError(
            f"This model could not be exported to ONNX ({type(exc).__name__}).",
            "Export TorchScript instead (--format torchscript): it keeps the full preprocessing.",
        ) from exc


def _snippet(fmt: str, pipeline: ImagePipeline | AudioPipeline, regression: bool = False) -> str:
    """predict.py: decodes with tlstudio_decode.py (a verbatim copy of the studio's media/portable.py), so a
    phone photo's EXIF turn, a transparent PNG or a 16-bit scan, or a 44.1 kHz recording, reach the model
    exactly as they reach it in the studio."""
    image = isinstance(pipeline, ImagePipeline)
    read = (
        "def load(path):\n"
        "    return decode.image_array(decode.open_rgb(path))[None]  # (1, 3, H, W) RGB in [0, 1]\n"
        if image else
        "def load(path):\n"
        "    wave, rate = decode.read_mono(path)\n"
        "    wave = decode.resample(wave, rate, SPEC['input']['sample_rate'])\n"
        "    return wave[None]  # (1, samples), mono, at the model's rate\n"
    )
    if fmt == "onnx":
        run = ("import onnxruntime as ort\n\n"
               "session = ort.InferenceSession(str(HERE / SPEC['file']))\n"
               "def predict(x):\n"
               "    return session.run(None, {session.get_inputs()[0].name: x})[0][0]\n")
    elif fmt == "torchscript":
        run = ("import torch\n\n"
               "model = torch.jit.load(str(HERE / SPEC['file']))\n"
               "def predict(x):\n"
               "    with torch.no_grad():\n"
               "        return model(torch.from_numpy(x)).numpy()[0]\n")
    else:
        run = ('raise SystemExit("The checkpoint format holds the studio weights "\n'
               '                 "(torch.load(..., weights_only=True)); export torchscript or onnx "\n'
               '                 "for a model that runs without the studio.")\n')
    return (
        '"""Run the exported classifier on files: python predict.py FILE [FILE ...]  (no studio needed)."""\n\n'
        "import json\nimport sys\nfrom pathlib import Path\n\n"
        "HERE = Path(__file__).resolve().parent\n"
        "sys.path.insert(0, str(HERE))\n"
        "import tlstudio_decode as decode  # noqa: E402  (the studio's own decoding, shipped beside this file)\n\n"
        "SPEC = json.loads((HERE / 'model.json').read_text())\n\n"
        f"{read}\n{run}\n"
        "for path in sys.argv[1:]:\n" + (
            "    print(f\"{path}: {SPEC['output']['name']} {float(predict(load(path))[0]):.4g}\")\n"
            if regression else
            "    probabilities = predict(load(path))\n"
            "    best = sorted(range(len(probabilities)), key=lambda i: -probabilities[i])[:3]\n"
            "    print(path + ': ' + ', '.join(f\"{SPEC['classes'][i]} {probabilities[i]:.3f}\" for i in best))\n")
    )


def portable_source() -> str:
    """The decoding module's source, read as a package resource (installers ship it as a data file)."""
    from importlib.resources import files

    try:
        return files("tlstudio.core.media").joinpath("portable.py").read_text(encoding="utf-8")
    except OSError as exc:
        raise ExportError("This installation lacks the decoding module that exports ship (portable.py).",
                          "Reinstall the studio; the model itself was exported.") from exc
