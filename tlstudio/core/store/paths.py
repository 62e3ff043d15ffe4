"""Where the studio keeps its own files: never inside a folder the user picked.

`TLSTUDIO_HOME` overrides everything (tests point it at a temporary folder so they never touch the
user's real runs or caches).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path


def _platform_data_home() -> Path:
    if sys.platform == "win32":
        return Path(os.environ.get("LOCALAPPDATA", Path.home() / "AppData" / "Local"))
    if sys.platform == "darwin":
        return Path.home() / "Library" / "Application Support"
    return Path(os.environ.get("XDG_DATA_HOME", Path.home() / ".local" / "share"))


def _platform_cache_home() -> Path:
    if sys.platform == "win32":
        return Path(os.environ.get("LOCALAPPDATA", Path.home() / "AppData" / "Local"))
    if sys.platform == "darwin":
        return Path.home() / "Library" / "Caches"
    return Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache"))


def data_home() -> Path:
    """Runs and projects."""
    override = os.environ.get("TLSTUDIO_HOME")
    return Path(override) / "data" if override else _platform_data_home() / "tlstudio"


def cache_home() -> Path:
    """Re-computable things: cached embeddings."""
    override = os.environ.get("TLSTUDIO_HOME")
    return Path(override) / "cache" if override else _platform_cache_home() / "tlstudio"


def runs_home() -> Path:
    return data_home() / "runs"


def features_cache_dir() -> Path:
    return cache_home() / "features"
