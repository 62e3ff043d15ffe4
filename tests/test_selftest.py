"""`tlstudio --self-test` from the checkout: every check passes; a broken install fails with exit 1 and says why."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest


def _run(args: list[str], home: Path, **extra: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "TLSTUDIO_HOME": str(home), "QT_QPA_PLATFORM": "offscreen", **extra}
    return subprocess.run([sys.executable, "-m", "tlstudio", *args], capture_output=True, text=True, env=env,
                          timeout=600)


def test_version_still_answers(tmp_path: Path) -> None:
    result = _run(["--version"], tmp_path)
    assert result.returncode == 0 and result.stdout.startswith("tlstudio ")


@pytest.mark.slow
def test_the_self_test_passes_from_the_checkout(tmp_path: Path) -> None:
    result = _run(["--self-test"], tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    for check in ("weights", "train", "evaluate", "onnx", "torchscript", "agreement", "workers", "multimedia",
                  "window"):
        assert any(line.split()[:2] == ["ok", check] for line in lines), f"no passing line for {check}"
    assert lines[-1].startswith("self-test passed")
    assert not any(tmp_path.iterdir()), "the self-test must use its own temporary home"


@pytest.mark.slow
def test_missing_weights_fail_the_self_test_with_a_reason(tmp_path: Path) -> None:
    result = _run(["--self-test"], tmp_path, TORCH_HOME=str(tmp_path / "empty-torch-home"))
    assert result.returncode == 1
    assert "FAIL  weights" in result.stdout and "SKIP  train" in result.stdout
    assert "self-test FAILED" in result.stdout
