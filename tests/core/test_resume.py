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


KILLER = """
import os, signal, sys
from tlstudio.core.data.scan import scan
from tlstudio.core.store.runs import RunDir
from tlstudio.core.training import engine, events as ev
from tlstudio.core.training.config import TrainConfig

data, out, kill_at = sys.argv[1], sys.argv[2], int(sys.argv[3])
config = TrainConfig.from_dict({"data": data, **__import__("json").loads(sys.argv[4])})

def listener(event):
    if isinstance(event, ev.EpochEnd) and event.epoch == kill_at:
        os.kill(os.getpid(), signal.SIGKILL)  # as a power cut would, right after the epoch's files

engine.train(scan(data), config, RunDir.create(out, config.backbone), listener)
"""


def _history_numbers(run: Path) -> list[list[float]]:
    rows = RunDir.open(run).read_history()
    return [[row[k] for k in ("epoch", "train_loss", "train_acc", "val_loss", "val_acc", "lr")] for row in rows]


@pytest.mark.slow
@pytest.mark.parametrize(
    ("settings", "kill_at"),
    [
        (dict(epochs=5, workers=0), 2),  # fast path, mid-phase
        (dict(epochs=5, workers=1), 3),  # fast path, embeddings by a worker process
        (dict(epochs=4, unfreeze="1", augment="light", schedule="two-phase", warmup_epochs=1, workers=0), 1),
        (dict(epochs=4, unfreeze="1", augment="light", schedule="two-phase", warmup_epochs=2, workers=1), 3),
    ],
    ids=["fast-0-workers-mid", "fast-1-worker-mid", "two-phase-0-workers-at-boundary", "two-phase-1-worker-mid"],
)
def test_sigkill_then_resume_repeats_the_uninterrupted_history(shapes_dir: Path, tmp_path: Path, settings,
                                                               kill_at: int) -> None:
    """A separate process killed with SIGKILL right after an epoch, resumed in another: the same history
    (to 1e-4) and the same weights as one run that was never stopped."""
    import json

    options = {**SMALL, **settings}
    never = settings["epochs"] + 1  # the uninterrupted run: a separate process too, like the two below
    whole = subprocess.run([sys.executable, "-c", KILLER, str(shapes_dir), str(tmp_path / "whole"), str(never),
                            json.dumps(options)], capture_output=True, text=True, timeout=600)
    assert whole.returncode == 0, whole.stderr
    killed = subprocess.run([sys.executable, "-c", KILLER, str(shapes_dir), str(tmp_path / "killed"), str(kill_at),
                             json.dumps(options)], capture_output=True, text=True, timeout=600)
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    assert len(RunDir.open(tmp_path / "killed").read_history()) == kill_at
    assert not (tmp_path / "killed" / "model.pt").exists()
    resumed = subprocess.run(_cli("train", "--resume", str(tmp_path / "killed"), "--quiet"), capture_output=True,
                             text=True, timeout=600)
    assert resumed.returncode == 0, resumed.stderr
    whole, again = _history_numbers(tmp_path / "whole"), _history_numbers(tmp_path / "killed")
    assert len(whole) == len(again) == settings["epochs"]
    for a, b in zip(whole, again, strict=True):
        assert all(abs(x - y) <= 1e-4 for x, y in zip(a, b, strict=True)), (a, b)
    one, other = _weights(tmp_path / "whole"), _weights(tmp_path / "killed")
    assert all(torch.allclose(one[k].float(), other[k].float(), atol=1e-5) for k in one)


@pytest.mark.slow
def test_a_terminal_ctrl_c_with_worker_processes_stops_cleanly(shapes_dir: Path, tmp_path: Path) -> None:
    """The terminal sends SIGINT to the whole process group, DataLoader workers included."""
    run = tmp_path / "run"
    process = subprocess.Popen(_cli("train", str(shapes_dir), "--out", str(run), *TRAIN_ARGS, "--workers", "1"),
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    _wait_for_epochs(run, 1, process, timeout=300)
    os.killpg(process.pid, signal.SIGINT)
    out, err = process.communicate(timeout=300)
    assert process.returncode == 130, err
    assert "Traceback" not in _without_ignored_teardown(err) and f"--resume {run}" in out
    assert (run / "model.pt").is_file() and (run / "metrics.json").is_file()
    resumed = subprocess.run(_cli("train", "--resume", str(run), "--quiet"), capture_output=True, text=True,
                             timeout=900)
    assert resumed.returncode == 0, resumed.stderr


def _without_ignored_teardown(err: str) -> str:
    """Drop "Exception ignored in ..." reports: Python prints them when a worker process is torn down at
    interpreter exit; they are noise after a clean stop, not a crash (exit code and files are checked)."""
    kept, skipping = [], False
    for line in err.splitlines():
        if line.startswith("Exception ignored in"):
            skipping = True
        elif skipping and line and not line.startswith((" ", "Traceback")):
            skipping = line.startswith(("RuntimeError", "AssertionError", "ChildProcessError"))
            continue
        if not skipping:
            kept.append(line)
    return "\n".join(kept)
