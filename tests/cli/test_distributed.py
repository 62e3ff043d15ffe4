"""`tlstudio train --devices N`: the same run on N processes through torch.distributed (gloo, 2 CPU processes
here), launched by torch.distributed.run as torchrun launches; Ctrl-C stops every rank and --resume goes on."""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from tlstudio.cli import main
from tlstudio.core.errors import RunError
from tlstudio.core.store.runs import RunDir
from tlstudio.core.training import distributed, engine
from tlstudio.core.training.embedding import Embedded
from tlstudio.core.training.engine import merge_shares
from tlstudio.demo import make_image_folder

TINY = ["--backbone", "mobilenet_v3_small", "--pretrained", "none", "--device", "cpu", "--quiet"]


@pytest.fixture(scope="module")
def photos(tmp_path_factory) -> Path:
    return make_image_folder(tmp_path_factory.mktemp("photos") / "p", classes=("a", "b", "c"), per_class=12,
                             size=(48, 40), seed=7)


def _studio(*argv: str, **kwargs) -> subprocess.Popen:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    return subprocess.Popen([sys.executable, "-m", "tlstudio", *argv], stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, env=env, **kwargs)


def _history(run: Path) -> list[dict[str, str]]:
    with open(run / "history.csv", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def _ranks_alive(run: Path) -> list[str]:
    found = subprocess.run(["pgrep", "-f", f"--out {run}"], capture_output=True, text=True)
    return found.stdout.split()


def test_fine_tune_on_two_processes(photos: Path, tmp_path: Path) -> None:
    run = tmp_path / "run"
    process = _studio("train", str(photos), "--devices", "2", "--unfreeze", "1", "--epochs", "2", "--out", str(run),
                      *TINY)
    out, _ = process.communicate(timeout=300)
    assert process.returncode == 0, out
    assert "Traceback" not in out
    assert out.count("Validation accuracy") == 1, out  # rank 0 reports; the other rank is silent
    resolved = json.loads((run / "config.json").read_text())["resolved"]
    assert resolved["world_size"] == 2 and resolved["batch_per_process"] == 16
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["world_size"] == 2 and metrics["status"] == "completed"
    assert metrics["sizes"]["val"] + metrics["sizes"]["train"] == 36  # every file scored once, not once per rank
    assert len(_history(run)) == 2
    assert (run / "model.pt").is_file() and not (run / "checkpoint.pt.tmp").exists()


def test_feature_extraction_shards_the_files_and_trains_as_one(photos: Path, tmp_path: Path) -> None:
    """Each rank embeds half of the files; the head then trains on all of them: the same validation
    accuracy, epoch by epoch, as the one-process run would be unlikely to reach by chance."""
    together, alone = tmp_path / "together", tmp_path / "alone"
    process = _studio("train", str(photos), "--devices", "2", "--epochs", "3", "--no-cache", "--out", str(together),
                      *TINY)
    out, _ = process.communicate(timeout=300)
    assert process.returncode == 0, out
    assert main(["train", str(photos), "--epochs", "3", "--no-cache", "--out", str(alone), *TINY]) == 0
    shared, single = _history(together), _history(alone)
    assert len(shared) == len(single) == 3
    config = json.loads((together / "config.json").read_text())["resolved"]
    assert config["fast_path"] and config["world_size"] == 2
    dataset = json.loads((together / "dataset.json").read_text())
    assert len(dataset["train"]) + len(dataset["val"]) == 36
    # the same embeddings, the same first head: the first epoch's losses agree closely
    assert abs(float(shared[0]["train_loss"]) - float(single[0]["train_loss"])) < 0.05


def test_ctrl_c_stops_every_rank_and_resume_finishes(photos: Path, tmp_path: Path) -> None:
    run = tmp_path / "run"
    process = _studio("train", str(photos), "--devices", "2", "--unfreeze", "1", "--epochs", "12", "--out",
                      str(run), *TINY[:-1])  # not quiet: the epoch lines say when to press Ctrl-C
    lines: list[str] = []
    assert process.stdout is not None
    for line in process.stdout:
        lines.append(line)
        if line.startswith("epoch   2/12"):
            process.send_signal(signal.SIGINT)  # what the terminal sends the launcher
            break
    rest, _ = process.communicate(timeout=120)
    out = "".join(lines) + rest
    assert process.returncode == 130, out
    assert "Traceback" not in out
    deadline = time.monotonic() + 30
    while _ranks_alive(run) and time.monotonic() < deadline:
        time.sleep(0.5)
    assert not _ranks_alive(run), "a rank outlived the stop"
    stopped_at = len(_history(run))
    assert 2 <= stopped_at < 12
    assert json.loads((run / "metrics.json").read_text())["status"] == "cancelled"

    with pytest.raises(RunError, match="trained on 2 process"):  # one process would not repeat the run
        engine.resume(RunDir.open(run), lambda _event: None)
    process = _studio("train", "--resume", str(run), "--quiet")  # resumes on the 2 processes it began with
    out, _ = process.communicate(timeout=300)
    assert process.returncode == 0, out
    assert "Training on 2 processes" in out
    history = _history(run)
    assert [int(row["epoch"]) for row in history] == list(range(1, 13))
    assert json.loads((run / "metrics.json").read_text())["status"] == "completed"


def test_print_launch_gives_the_torchrun_command(photos: Path, capsys) -> None:
    code = main(["train", str(photos), "--devices", "4", "--nnodes", "2", "--rdzv-endpoint", "node1:29400",
                 "--print-launch", "--epochs", "3"])
    out = capsys.readouterr().out.strip()
    assert code == 0
    assert out.startswith("torchrun --nnodes=2 --rdzv-backend=c10d --rdzv-endpoint=node1:29400 --rdzv-id=")
    assert "--nproc-per-node=4 --module tlstudio train" in out and "--epochs 3" in out
    assert "--out " in out and "--print-launch" not in out and "--nnodes 2" not in out
    assert not Path(out.split("--out ")[1].split()[0]).exists()  # printed, nothing started or made


def test_launched_ranks_need_one_run_folder(photos: Path, capsys, monkeypatch) -> None:
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("RANK", "1")
    assert main(["train", str(photos), *TINY]) == 2
    assert "give --out" in capsys.readouterr().err


def test_shares_merge_back_in_file_order() -> None:
    world = [distributed.World(rank, 2) for rank in (0, 1)]
    shares = [distributed.shard(5, w) for w in world]
    assert shares == [[0, 2, 4], [1, 3]]
    parts = []
    for share in shares:  # file i has i+1 windows whose rows hold i; share 1's second file failed
        kept = [0, 1, 2] if len(share) == 3 else [0]
        rows = [torch.full((share[k] + 1, 2), float(share[k])) for k in kept]
        parts.append((share, Embedded(torch.cat(rows), [len(r) for r in rows],
                                      torch.tensor([share[k] for k in kept]), kept,
                                      [] if len(share) == 3 else [(1, "broken")])))
    merged = merge_shares(parts)
    assert merged.kept == [0, 1, 2, 4] and merged.counts == [1, 2, 3, 5]
    assert merged.labels.tolist() == [0, 1, 2, 4] and merged.bad == [(3, "broken")]
    assert merged.features[:, 0].tolist() == [0, 1, 1, 2, 2, 2, 4, 4, 4, 4, 4]


def test_sharded_order_pads_like_distributed_sampler() -> None:
    order = torch.tensor([4, 0, 3, 1, 2])
    parts = [distributed.sharded_order(order, distributed.World(rank, 2)).tolist() for rank in (0, 1)]
    assert parts == [[4, 3, 2], [0, 1, 4]]  # equal lengths: every rank takes the same number of steps
    few = [distributed.sharded_order(torch.tensor([2, 0, 1]), distributed.World(rank, 8)).tolist()
           for rank in range(8)]
    assert [len(part) for part in few] == [1] * 8  # fewer rows than ranks: still one step each
    sampler = distributed.ShardedEpochSampler(5, seed=3, world=distributed.World(1, 2))
    sampler.set_epoch(2)
    pairs = list(sampler)
    assert len(pairs) == len(sampler) == 3 and all(epoch == 2 for epoch, _ in pairs)


def test_a_window_hands_its_exact_files_to_processes_and_follows_them(photos: Path, tmp_path: Path) -> None:
    """What the window does for "All N GPUs": a plan (its data less the files left out, its settings), the
    processes started, their events relayed as in-process events; Stop ends them at a step, saved."""
    import dataclasses
    import threading

    from tlstudio.core.control import Control
    from tlstudio.core.data.scan import scan
    from tlstudio.core.store.paths import runs_home
    from tlstudio.core.training import events as ev
    from tlstudio.core.training.config import TrainConfig
    from tlstudio.core.training.processes import train_in_processes

    spec = scan(photos)
    left_out = spec.train[0].path
    spec = dataclasses.replace(spec, train=spec.train[1:])  # as the window's training_spec() leaves it out
    config = TrainConfig(data=str(photos), backbone="mobilenet_v3_small", pretrained="none", device="cpu",
                         devices=2, epochs=2)
    seen: list = []
    metrics = train_in_processes(spec, config, tmp_path / "run", seen.append, Control())
    assert metrics["status"] == "completed" and metrics["world_size"] == 2
    kinds = [type(e) for e in seen]
    assert kinds[0] is ev.RunStarted and kinds[-1] is ev.Finished and kinds.count(ev.EpochEnd) == 2
    assert any(isinstance(e, ev.BatchEnd) for e in seen)
    dataset = json.loads((tmp_path / "run" / "dataset.json").read_text())
    assert left_out not in [row["path"] for row in dataset["train"]]
    assert len(dataset["train"]) == len(spec.train)
    assert not list((runs_home() / ".plans").glob("*"))  # the plan is not left behind

    control = Control()
    stopped: list = []

    def stop_after_first_epoch(event) -> None:
        stopped.append(event)
        if isinstance(event, ev.EpochEnd):
            threading.Thread(target=control.cancel).start()

    config.epochs = 30
    metrics = train_in_processes(spec, config, tmp_path / "stopped", stop_after_first_epoch, control)
    assert metrics["status"] == "cancelled"
    assert 1 <= sum(isinstance(e, ev.EpochEnd) for e in stopped) < 30
    assert not _ranks_alive(tmp_path / "stopped")
    resumed: list = []
    metrics = train_in_processes(None, config, tmp_path / "stopped", resumed.append, Control())
    assert metrics["status"] == "completed" and metrics["world_size"] == 2 and metrics["epochs"] == 30


def test_a_failed_launch_says_why(photos: Path, tmp_path: Path) -> None:
    from tlstudio.core.control import Control
    from tlstudio.core.data.scan import scan
    from tlstudio.core.errors import StudioError
    from tlstudio.core.training.config import TrainConfig
    from tlstudio.core.training.processes import train_in_processes

    config = TrainConfig(data=str(photos), backbone="no_such_backbone", pretrained="none", device="cpu", devices=2)
    with pytest.raises(StudioError) as raised:
        train_in_processes(scan(photos), config, tmp_path / "run", lambda _e: None, Control())
    assert "no_such_backbone" in raised.value.message
