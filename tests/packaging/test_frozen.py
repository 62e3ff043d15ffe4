"""The frozen app's start-up: bundled weights become visible to torch, missing display libraries are named."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from tlstudio import frozen


def _bundle(tmp_path: Path) -> Path:
    home = tmp_path / "bundle" / frozen.BUNDLED_TORCH_HOME
    (home / "hub" / "checkpoints").mkdir(parents=True)
    (home / "hub" / "checkpoints" / "mobilenet_v2-b0353104.pth").write_bytes(b"weights")
    return home


def test_bundled_weights_are_copied_where_torch_looks(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TORCH_HOME", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    said = frozen.provide_bundled_weights(_bundle(tmp_path))
    placed = tmp_path / "cache" / "torch" / "hub" / "checkpoints" / "mobilenet_v2-b0353104.pth"
    assert placed.read_bytes() == b"weights" and "copied" in said
    assert "TORCH_HOME" not in os.environ
    assert "already" in frozen.provide_bundled_weights(_bundle(tmp_path / "again"))


def test_a_read_only_home_falls_back_to_the_bundle(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The copy fails (a file stands where the folder should be, as a read-only home would, even for root)."""
    blocker = tmp_path / "torch"
    blocker.write_text("not a folder")
    monkeypatch.setenv("TORCH_HOME", str(blocker))
    bundled = _bundle(tmp_path)
    said = frozen.provide_bundled_weights(bundled)
    assert os.environ["TORCH_HOME"] == str(bundled) and "could not write" in said


def test_the_rule_matches_torch_hub(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import torch.hub

    monkeypatch.delenv("TORCH_HOME", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert Path(torch.hub.get_dir()) == frozen.user_torch_home() / "hub"
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "elsewhere"))
    assert Path(torch.hub.get_dir()) == frozen.user_torch_home() / "hub"


def test_nothing_happens_outside_a_frozen_app(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delattr(sys, "frozen", raising=False)
    before = dict(os.environ)
    frozen.prepare([])
    assert dict(os.environ) == before


def test_missing_display_libraries_are_named(monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    monkeypatch.setattr(sys, "platform", "linux")
    monkeypatch.setattr(frozen.ctypes.util, "find_library", lambda name: None if name == "xcb-cursor" else name)
    monkeypatch.setenv("DISPLAY", ":0")
    monkeypatch.delenv("QT_QPA_PLATFORM", raising=False)
    frozen.warn_if_display_libraries_missing([])
    assert "sudo apt install libxcb-cursor0" in capsys.readouterr().err
    frozen.warn_if_display_libraries_missing(["train", "folder"])  # the command line needs no display
    assert capsys.readouterr().err == ""
