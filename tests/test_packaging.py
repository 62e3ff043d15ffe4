"""What the installers and `pip install` ship: every package listed, resources reachable, entry point set."""

from __future__ import annotations

import importlib.resources
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_every_package_is_listed_in_pyproject() -> None:
    listed = set(tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])
    found = {
        ".".join(path.parent.relative_to(ROOT).parts)
        for path in (ROOT / "tlstudio").rglob("__init__.py")
    }
    assert found | {"tlstudio.resources"} == listed


def test_the_demo_data_is_reachable_through_importlib_resources() -> None:
    demo = importlib.resources.files("tlstudio.resources") / "demo" / "shapes"
    classes = sorted(entry.name for entry in demo.iterdir() if entry.is_dir())
    assert classes == ["circles", "squares", "triangles"]
    assert all(len(list((demo / name).iterdir())) >= 30 for name in classes)
