"""What the installers carry besides Python code: one list, read by tlstudio.spec and by tests/packaging.

Data-driven on purpose: every file under resources/ ships (a new icon or style needs no spec edit), and
every pretrained-weights file matching WEIGHTS_PATTERNS in torch's hub checkpoints folder ships, so a later
YAMNet file (`yamnet-*.pth`) is picked up the moment it is placed there.
"""

from __future__ import annotations

import os
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESOURCES = ROOT / "resources"
RESOURCES_DEST = "tlstudio/resources"  # importlib.resources.files("tlstudio.resources") reads here, frozen or not
WEIGHTS_DEST = "torch_home/hub/checkpoints"  # tlstudio.frozen.BUNDLED_TORCH_HOME + torch's hub layout

# The default backbone's weights (required) and later optional ones (shipped when present).
REQUIRED_WEIGHTS = ("mobilenet_v2-b0353104.pth",)
WEIGHTS_PATTERNS = ("mobilenet_v2-*.pth", "yamnet-*.pth")

# Imported by name at run time or only inside the self-test / optional paths; PyInstaller's import scan misses
# or must not skip them. Every tlstudio module is added on top (collect_submodules in the spec).
HIDDEN_IMPORTS = (
    "tlstudio.resources",
    "tlstudio.selftest",
    "tlstudio.frozen",
    "tlstudio.launcher",
    "tlstudio.gui.app",
    "PySide6.QtMultimedia",  # audio playback, imported lazily by the Data page
    "PySide6.QtSvg",  # icons in the stylesheet / pyqtgraph
    "onnxruntime",  # the self-test runs the ONNX export (collected only when installed)
    "onnx",
    "onnxscript",
    "soundfile",
    "sklearn.decomposition",  # the embedding map (PCA, t-SNE), imported when a map is drawn
    "sklearn.manifold",
)

# Shipped with their .py sources as well as bytecode (TorchScript and ONNX export read source with inspect).
# torch itself is handled by its PyInstaller hook the same way.
SOURCE_PACKAGES = ("tlstudio", "torchvision", "torchaudio", "onnxscript", "onnx_ir", "onnx")

# Never in the bundle: compilers for torch.compile (unavailable when frozen), test and dev tools, other GUIs.
EXCLUDES = (
    "triton",
    "tkinter",
    "_tkinter",
    "pytest",
    "pytestqt",
    "IPython",
    "matplotlib",
    "importlinter",
    "grimp",
    "ruff",
    "PyQt5",
    "PyQt6",
    "PySide2",
    "torch.utils.tensorboard",
    "tensorboard",
)


def torch_hub_checkpoints() -> Path:
    """torch.hub's folder on the build machine (same rule as torch, without importing it)."""
    home = os.environ.get("TORCH_HOME")
    if not home:
        home = os.path.join(os.environ.get("XDG_CACHE_HOME") or os.path.join("~", ".cache"), "torch")
    return Path(home).expanduser() / "hub" / "checkpoints"


def resource_files() -> list[Path]:
    """Every file under resources/ except caches."""
    return sorted(p for p in RESOURCES.rglob("*")
                  if p.is_file() and "__pycache__" not in p.parts and p.suffix != ".pyc")


def resource_datas() -> list[tuple[str, str]]:
    """(source file, destination folder) pairs in PyInstaller's `datas` form."""
    pairs = []
    for path in resource_files():
        folder = path.parent.relative_to(RESOURCES).as_posix()
        pairs.append((str(path), RESOURCES_DEST if folder == "." else f"{RESOURCES_DEST}/{folder}"))
    return pairs


def weights_files(checkpoints: Path | None = None) -> list[Path]:
    checkpoints = checkpoints or torch_hub_checkpoints()
    found: set[Path] = set()
    for pattern in WEIGHTS_PATTERNS:
        found.update(p for p in checkpoints.glob(pattern) if p.is_file())
    return sorted(found)


def missing_required_weights(checkpoints: Path | None = None) -> list[str]:
    names = {p.name for p in weights_files(checkpoints)}
    return [name for name in REQUIRED_WEIGHTS if name not in names]


def weights_datas(checkpoints: Path | None = None) -> list[tuple[str, str]]:
    return [(str(p), WEIGHTS_DEST) for p in weights_files(checkpoints)]
