"""Shared fixtures: an isolated studio home per session and generated data sets (no network, no display)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tlstudio.demo import make_image_folder


@pytest.fixture(autouse=True, scope="session")
def _isolated_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Runs and caches go to a temporary folder: tests never touch the user's real files."""
    home = tmp_path_factory.mktemp("tlstudio-home")
    os.environ["TLSTUDIO_HOME"] = str(home)
    return home


@pytest.fixture(scope="session")
def shapes_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """3 classes x 24 small photo-like JPEGs, one folder per class."""
    return make_image_folder(tmp_path_factory.mktemp("shapes"), classes=("circles", "squares", "triangles"),
                             per_class=24, size=(96, 72), seed=1)


@pytest.fixture(scope="session")
def split_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """train/ and val/ folders, 2 classes."""
    return make_image_folder(tmp_path_factory.mktemp("split"), classes=("circles", "stars"), per_class=12,
                             val_per_class=6, size=(96, 72), seed=2, layout="split")

