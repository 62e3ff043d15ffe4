"""What only an installed (PyInstaller-frozen) studio needs before anything else runs.

The bundle carries pretrained weights (at least the default backbone's) in `<bundle>/torch_home/hub/checkpoints`,
laid out like torch's own hub folder. On start, weights missing from the user's torch hub folder are copied
there (it is where torchvision and the studio look, and where later downloads go); where that folder cannot be
written, `TORCH_HOME` points torch at the bundled folder instead, so the default backbone still works offline.

On Linux, Qt's xcb platform plugin needs a few system libraries; when one is missing, the first start says which
packages to install instead of Qt's terse "could not load the Qt platform plugin".

Nothing here imports torch or Qt: `tlstudio --help` stays instant.
"""

from __future__ import annotations

import contextlib
import ctypes.util
import json
import os
import shutil
import sys
from pathlib import Path

BUNDLED_TORCH_HOME = "torch_home"  # inside the bundle; the spec puts weights in <this>/hub/checkpoints

# The libraries Qt 6's xcb plugin loads that some desktops lack, and the Debian/Ubuntu packages carrying them.
XCB_LIBRARIES = {
    "xcb-cursor": "libxcb-cursor0",
    "xkbcommon-x11": "libxkbcommon-x11-0",
    "xcb-icccm": "libxcb-icccm4",
    "xcb-keysyms": "libxcb-keysyms1",
    "xcb-shape": "libxcb-shape0",
    "xcb-randr": "libxcb-randr0",
    "xcb-render-util": "libxcb-render-util0",
    "xcb-image": "libxcb-image0",
}


def is_frozen() -> bool:
    return bool(getattr(sys, "frozen", False))


def bundle_dir() -> Path:
    """The folder holding the bundle's data files (`_internal` next to the executable; Resources on macOS)."""
    return Path(getattr(sys, "_MEIPASS", Path(sys.executable).parent))


def bundle_info() -> dict:
    """The bundle's build facts (`tlstudio_bundle.json`, written by packaging/tlstudio.spec): variant, version."""
    try:
        return json.loads((bundle_dir() / "tlstudio_bundle.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}


def user_torch_home() -> Path:
    """torch.hub's own rule (`_get_torch_home`), without importing torch."""
    env = os.environ.get("TORCH_HOME")
    if env:
        return Path(env).expanduser()
    cache = os.environ.get("XDG_CACHE_HOME") or os.path.join("~", ".cache")
    return Path(cache, "torch").expanduser()


def provide_bundled_weights(bundled_home: Path | None = None) -> str:
    """Make bundled weights visible to torch; returns what was done, in words (for the self-test and logs)."""
    bundled_home = bundled_home or bundle_dir() / BUNDLED_TORCH_HOME
    bundled = bundled_home / "hub" / "checkpoints"
    files = sorted(p for p in bundled.glob("*.pth") if p.is_file()) if bundled.is_dir() else []
    if not files:
        return "no bundled weights"
    target = user_torch_home() / "hub" / "checkpoints"
    missing = [p for p in files if not (target / p.name).is_file()]
    if not missing:
        return f"weights already in {target}"
    try:
        target.mkdir(parents=True, exist_ok=True)
        for source in missing:
            staging = target / f".{source.name}.part"
            shutil.copyfile(source, staging)
            os.replace(staging, target / source.name)
    except OSError:
        os.environ["TORCH_HOME"] = str(bundled_home)  # read-only or full home: use the bundle's copy in place
        return f"TORCH_HOME={bundled_home} (could not write {target})"
    return f"copied {', '.join(p.name for p in missing)} to {target}"


def missing_xcb_packages() -> list[str]:
    """Debian/Ubuntu package names of xcb libraries neither the bundle nor the system has (Linux only)."""
    if not sys.platform.startswith("linux"):
        return []
    here = bundle_dir()
    missing = []
    for library, package in XCB_LIBRARIES.items():
        if list(here.glob(f"lib{library}.so*")):
            continue
        if ctypes.util.find_library(library) is None:
            missing.append(package)
    return missing


def warn_if_display_libraries_missing(argv: list[str]) -> None:
    """Before the window opens (no command given) on an X11 desktop, name the packages Qt will need."""
    opens_window = not argv or (len(argv) == 1 and argv[0].lower().endswith(".tlsproj"))
    if not opens_window or not sys.platform.startswith("linux"):
        return
    platform = os.environ.get("QT_QPA_PLATFORM", "")
    if platform and not platform.startswith("xcb"):
        return
    if not os.environ.get("DISPLAY") and os.environ.get("WAYLAND_DISPLAY"):
        return
    packages = missing_xcb_packages()
    if packages:
        print("Transfer Learning Studio needs a few system libraries to open its window on this desktop.\n"
              f"Install them once, e.g. on Debian/Ubuntu:  sudo apt install {' '.join(packages)}\n"
              "(Fedora: xcb-util-cursor xcb-util-wm xcb-util-keysyms libxkbcommon-x11.) "
              "The command line (`tlstudio --help`) works without them.", file=sys.stderr)


def prepare(argv: list[str]) -> None:
    """Called first thing by `tlstudio.__main__` in a frozen app; a no-op from a checkout or pip install."""
    if not is_frozen():
        return
    os.environ.setdefault("PYTORCH_ENABLE_MPS_FALLBACK", "1")
    if bundle_info().get("variant") == "cpu":
        # The CPU build keeps only the CUDA libraries torch needs to load, not those a GPU run needs: hide GPUs,
        # so `--device auto` picks the CPU instead of failing half-way on a machine with an NVIDIA card.
        os.environ["CUDA_VISIBLE_DEVICES"] = ""
    with contextlib.suppress(OSError):  # the studio says what to do when weights are missing; never stop here
        provide_bundled_weights()
    warn_if_display_libraries_missing(argv)
