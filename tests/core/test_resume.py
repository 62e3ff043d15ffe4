"""Interrupted runs: cancel, Ctrl-C and SIGKILL lose at most an epoch, and resume ends as if never stopped."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from tlstudio.core.control import Control
from tlstudio.core.data.scan import scan
from tlstudio.core.errors import RunError
from tlstudio.core.store.runs import RunDir
from tlstudio.core.training import engine
from tlstudio.core.training import events as ev
from tlstudio.core.training.config import TrainConfig

SMALL = dict(backbone="mobilenet_v3_small", pretrained="none", batch_size=16, cache_features=False)


def _without_timing(run: Path) -> list[str]:
    lines = (run / "history.csv").read_text().splitlines()
    return [",".join(line.split(",")[:-1]) for line in lines]


def _weights(run: Path) -> dict[str, torch.Tensor]:
    return torch.load(run / "model.pt", weights_only=True)["state_dict"]


@pytest.mark.parametrize(
    "settings",
    [
        dict(epochs=5),  # fast path: head on cached embeddings
        dict(epochs=4, unfreeze="1", augment="light", schedule="two-phase", warmup_epochs=1),  # full path
    ],
    ids=["fast-path", "two-phase-fine-tune"],
)
def test_cancel_then_resume_equals_an_uninterrupted_run(shapes_dir: Path, tmp_path: Path, settings) -> None:
    config = TrainConfig(data=str(shapes_dir), **SMALL, **settings)
    spec = scan(shapes_dir)
    engine.train(spec, config, RunDir.create(tmp_path / "whole", config.backbone), lambda _e: None)

    control = Control()

    def stop_after_two(event) -> None:
        if isinstance(event, ev.EpochEnd) and event.epoch == 2:
            control.cancel()

    config = TrainConfig(data=str(shapes_dir), **SMALL, **settings)
    first = engine.train(spec, config, RunDir.create(tmp_path / "split", config.backbone), stop_after_two, control)
    assert first["status"] == "cancelled" and first["epochs"] == 2
    resumed = engine.resume(RunDir.open(tmp_path / "split"), lambda _e: None)
    assert resumed["status"] == "completed" and resumed["epochs"] == settings["epochs"]
    assert _without_timing(tmp_path / "split") == _without_timing(tmp_path / "whole")
    whole, split = _weights(tmp_path / "whole"), _weights(tmp_path / "split")
    assert all(torch.equal(whole[k], split[k]) for k in whole)


def test_a_finished_run_is_not_resumed_again(shapes_dir: Path, tmp_path: Path) -> None:
    config = TrainConfig(data=str(shapes_dir), epochs=1, **SMALL)
    engine.train(scan(shapes_dir), config, RunDir.create(tmp_path / "run", config.backbone), lambda _e: None)
    with pytest.raises(RunError, match="already finished"):
        engine.resume(RunDir.open(tmp_path / "run"), lambda _e: None)


def _cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "tlstudio", *args]


def _wait_for_epochs(run: Path, epochs: int, process: subprocess.Popen, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        history = run / "history.csv"
        if history.is_file() and len(history.read_text().splitlines()) > epochs:
            return
        assert process.poll() is None, process.communicate()
        time.sleep(0.05)
    raise AssertionError("the run did not reach the expected epoch in time")


TRAIN_ARGS = ["--backbone", "mobilenet_v3_small", "--pretrained", "none", "--unfreeze", "1", "--epochs", "20",
              "--batch-size", "8", "--no-cache"]


def test_sigkill_mid_run_then_resume_completes_every_epoch(shapes_dir: Path, tmp_path: Path) -> None:
    run = tmp_path / "run"
    process = subprocess.Popen(_cli("train", str(shapes_dir), "--out", str(run), *TRAIN_ARGS),
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    _wait_for_epochs(run, 2, process)
    process.send_signal(signal.SIGKILL)
    process.wait()
    done = len(RunDir.open(run).read_history())
    assert 2 <= done < 20
    checkpoint = torch.load(run / "checkpoint.pt", weights_only=True)  # not torn by the kill
    assert checkpoint["epoch"] >= 2
    result = subprocess.run(_cli("train", "--resume", str(run), "--quiet"), capture_output=True, text=True,
                            timeout=600)
    assert result.returncode == 0, result.stderr
    history = RunDir.open(run).read_history()
    assert [row["epoch"] for row in history] == list(range(1, 21))
    assert (run / "metrics.json").is_file()


def test_ctrl_c_saves_and_says_how_to_resume(shapes_dir: Path, tmp_path: Path) -> None:
    run = tmp_path / "run"
    process = subprocess.Popen(_cli("train", str(shapes_dir), "--out", str(run), *TRAIN_ARGS),
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    _wait_for_epochs(run, 1, process)
    process.send_signal(signal.SIGINT)
    out, err = process.communicate(timeout=120)
    assert process.returncode == 130, err
    assert "Stopping after this batch" in out and f"--resume {run}" in out
    assert "Traceback" not in err
    assert (run / "model.pt").is_file() and (run / "metrics.json").is_file()


@pytest.fixture(autouse=True)
def _no_stray_children():
    yield
    if hasattr(os, "waitpid"):
        try:
            while os.waitpid(-1, os.WNOHANG)[0]:
                pass
        except ChildProcessError:
            pass
