"""The training engine on small generated data with random weights (no network, no display)."""

from __future__ import annotations

import csv
import json
import threading
from pathlib import Path

import pytest
import torch

from tests.helpers import tree_digest
from tlstudio.core.control import Control
from tlstudio.core.data.scan import scan
from tlstudio.core.media.images import check_image
from tlstudio.core.models.saved import load_model
from tlstudio.core.store.runs import RunDir
from tlstudio.core.training import engine
from tlstudio.core.training import events as ev
from tlstudio.core.training.config import TrainConfig

SMALL = dict(backbone="mobilenet_v3_small", pretrained="none", batch_size=16)


def run(data: Path, out: Path, control: Control | None = None, **overrides):
    config = TrainConfig(data=str(data), **{**SMALL, **overrides})
    spec = scan(data, val_split=config.val_split, seed=config.seed, check_file=check_image)
    events: list = []
    metrics = engine.train(spec, config, RunDir.create(out, config.backbone), events.append, control)
    return metrics, events


def test_fast_path_writes_a_complete_run_folder(shapes_dir: Path, tmp_path: Path) -> None:
    before = tree_digest(shapes_dir)
    metrics, events = run(shapes_dir, tmp_path / "run", epochs=3)
    out = tmp_path / "run"
    for name in ("config.json", "history.csv", "metrics.json", "labels.json", "model.pt", "checkpoint.pt",
                 "dataset.json"):
        assert (out / name).is_file(), name
    for key in ("val_accuracy", "val_loss", "epochs", "best_epoch", "train_seconds", "device", "backbone",
                "per_class", "confusion_matrix"):
        assert key in metrics
    assert metrics["fast_path"] is True and metrics["epochs"] == 3
    val_files = len(json.loads((out / "dataset.json").read_text())["val"])
    assert sum(map(sum, metrics["confusion_matrix"])) == metrics["sizes"]["val"] == val_files > 0
    with open(out / "history.csv") as handle:
        assert [int(row["epoch"]) for row in csv.DictReader(handle)] == [1, 2, 3]
    assert json.loads((out / "labels.json").read_text())["classes"] == ["circles", "squares", "triangles"]
    payload = torch.load(out / "model.pt", weights_only=True)
    assert payload["backbone"] == "mobilenet_v3_small"
    _model, classes, pipeline = load_model(RunDir.open(out))
    assert classes == ["circles", "squares", "triangles"] and pipeline.preprocess.crop == 224
    kinds = [type(e).__name__ for e in events]
    assert kinds[0] == "RunStarted" and kinds[-1] == "Finished"
    assert kinds.count("EpochEnd") == 3 and "BatchEnd" in kinds and "Progress" in kinds
    assert tree_digest(shapes_dir) == before


def test_embeddings_are_cached_between_runs(shapes_dir: Path, tmp_path: Path) -> None:
    _, first = run(shapes_dir, tmp_path / "a", epochs=1, seed=11)
    _, second = run(shapes_dir, tmp_path / "b", epochs=1, seed=11)
    starts = [e for e in second if isinstance(e, ev.Progress) and e.stage.startswith("embedding")]
    # the very first progress report of each split already counts every file as done (cache hits)
    assert starts[0].done == starts[0].total
    fresh = [e for e in first if isinstance(e, ev.Progress) and e.stage.startswith("embedding")]
    assert fresh[0].done == 0


def test_runs_are_reproducible_with_a_seed(shapes_dir: Path, tmp_path: Path) -> None:
    a, _ = run(shapes_dir, tmp_path / "a", epochs=2, seed=5, cache_features=False)
    b, _ = run(shapes_dir, tmp_path / "b", epochs=2, seed=5, cache_features=False)
    history_a = (tmp_path / "a" / "history.csv").read_text().splitlines()
    history_b = (tmp_path / "b" / "history.csv").read_text().splitlines()
    strip = lambda lines: [",".join(line.split(",")[:-1]) for line in lines]  # noqa: E731 - drop timings
    assert strip(history_a) == strip(history_b)
    assert a["confusion_matrix"] == b["confusion_matrix"]


def test_fine_tuning_updates_only_the_unfrozen_blocks(shapes_dir: Path, tmp_path: Path) -> None:
    metrics, events = run(shapes_dir, tmp_path / "run", epochs=1, unfreeze="1", augment="light")
    assert metrics["fast_path"] is False
    ready = next(e for e in events if isinstance(e, ev.ModelReady))
    assert ready.trainable_blocks == ["pre-logits"]
    model, _, _ = load_model(RunDir.open(tmp_path / "run"))
    from tlstudio.core.models.registry import get_entry
    from tlstudio.core.models.transfer_model import build_model

    torch.manual_seed(0)  # the engine's seed: the same random initialisation
    initial = build_model(get_entry("mobilenet_v3_small"), 3)
    trained = model.state_dict()
    frozen_key = "backbone.features.0.0.weight"
    top_key = "backbone.classifier.0.weight"
    assert torch.equal(initial.state_dict()[frozen_key], trained[frozen_key])
    assert not torch.equal(initial.state_dict()[top_key], trained[top_key])


def test_two_phase_schedule_trains_head_then_unfreezes(split_dir: Path, tmp_path: Path) -> None:
    metrics, events = run(split_dir, tmp_path / "run", epochs=3, unfreeze="2", schedule="two-phase",
                          warmup_epochs=1, augment="none")
    phases = [e for e in events if isinstance(e, ev.PhaseStarted)]
    assert [(p.phase, p.first_epoch, p.last_epoch) for p in phases] == [("head", 1, 1), ("fine-tune", 2, 3)]
    assert phases[0].trainable_blocks == [] and len(phases[1].trainable_blocks) == 2
    history = RunDir.open(tmp_path / "run").read_history()
    assert [row["phase"] for row in history] == ["head", "fine-tune", "fine-tune"]
    assert metrics["sizes"] == {"train": 24, "val": 12, "test": 0}


def test_cancel_stops_between_batches_and_keeps_the_best_so_far(shapes_dir: Path, tmp_path: Path) -> None:
    control = Control()
    seen: list = []

    def listener(event) -> None:
        seen.append(event)
        if isinstance(event, ev.EpochEnd) and event.epoch == 1:
            control.cancel()

    config = TrainConfig(data=str(shapes_dir), epochs=50, **SMALL)
    spec = scan(shapes_dir)
    metrics = engine.train(spec, config, RunDir.create(tmp_path / "run", config.backbone), listener, control)
    assert metrics["status"] == "cancelled"
    assert metrics["epochs"] == 1
    assert (tmp_path / "run" / "model.pt").is_file()
    assert isinstance(seen[-1], ev.Finished) and seen[-1].status == "cancelled"


def test_a_stop_during_validation_keeps_the_epoch_it_was_validating(shapes_dir: Path, tmp_path: Path) -> None:
    """A user saw "Stopped before the first epoch ended" and no model after Stop during epoch 1's validation
    pass: the pass now finishes (shown as progress), the epoch is saved, and the run stops right after it."""
    control = Control()
    seen: list = []

    def listener(event) -> None:
        seen.append(event)
        if isinstance(event, ev.Progress) and event.stage == "validating epoch 1" and event.done > 0:
            control.cancel()

    config = TrainConfig(data=str(shapes_dir), epochs=5, unfreeze="1", augment="light", **SMALL)
    spec = scan(shapes_dir)
    metrics = engine.train(spec, config, RunDir.create(tmp_path / "run", config.backbone), listener, control)
    assert metrics["status"] == "cancelled" and metrics["epochs"] == 1 and metrics["best_epoch"] == 1
    assert (tmp_path / "run" / "model.pt").is_file()
    passes = [e for e in seen if isinstance(e, ev.Progress) and e.stage == "validating epoch 1"]
    assert passes[0].done == 0 and passes[-1].done == passes[-1].total == len(spec.val)
    assert [e.epoch for e in seen if isinstance(e, ev.EpochEnd)] == [1]


def test_pause_holds_the_batch_counter_still_until_resumed(shapes_dir: Path, tmp_path: Path) -> None:
    control = Control()
    batches: list[int] = []
    paused_at = threading.Event()

    def listener(event) -> None:
        if isinstance(event, ev.BatchEnd):
            batches.append(event.step)
            if len(batches) == 1:
                control.pause()
                paused_at.set()

    result: dict = {}
    config = TrainConfig(data=str(shapes_dir), epochs=2, unfreeze="1", augment="light", **SMALL)
    thread = threading.Thread(target=lambda: result.update(metrics=engine.train(
        scan(shapes_dir), config, RunDir.create(tmp_path / "run", config.backbone), listener, control)))
    thread.start()
    assert paused_at.wait(timeout=120)
    seen = len(batches)
    thread.join(timeout=1.5)  # a window while paused
    assert thread.is_alive() and len(batches) == seen == 1  # no batch ran while paused
    control.resume()
    thread.join(timeout=300)
    assert not thread.is_alive() and result["metrics"]["status"] == "completed"
    assert len(batches) > seen


def test_a_file_that_breaks_after_the_scan_is_skipped_and_named(tmp_path: Path) -> None:
    from tlstudio.demo import make_image_folder

    data = make_image_folder(tmp_path / "d", classes=("a", "b"), per_class=6, size=(48, 48))
    spec = scan(data, val_split=0.34)
    victim = Path(spec.train[0].path)
    victim.write_bytes(victim.read_bytes()[:200])  # truncated after scanning
    config = TrainConfig(data=str(data), epochs=2, val_split=0.34, **SMALL)
    events: list = []
    metrics = engine.train(spec, config, RunDir.create(tmp_path / "run", config.backbone), events.append)
    assert metrics["status"] == "completed"
    problems = [e for e in events if isinstance(e, ev.Problem)]
    assert len(problems) == 1 and problems[0].files == [str(victim)]
    skipped = json.loads((tmp_path / "run" / "dataset.json").read_text())["skipped"]
    assert skipped[0]["path"] == str(victim) and "truncated" in skipped[0]["reason"]


def test_no_validation_files_is_a_clear_error(shapes_dir: Path, tmp_path: Path) -> None:
    from tlstudio.core.errors import DataError

    with pytest.raises(DataError, match="validation"):
        run(shapes_dir, tmp_path / "run", epochs=1, val_split=0.0)


def test_frozen_parts_and_the_classifier_dropout_stay_in_eval_mode() -> None:
    """mobilenet_v2 keeps a Dropout in front of the classifier it loses; it belongs to no block."""
    from tlstudio.core.models import freezing
    from tlstudio.core.models.registry import get_entry
    from tlstudio.core.models.transfer_model import build_model

    model = build_model(get_entry("mobilenet_v2"), 3, "linear")
    dropout = model.backbone.classifier[0]
    assert isinstance(dropout, torch.nn.Dropout) and not any(b.owns("classifier.0.") for b in model.blocks)
    freezing.apply(model, 0)
    model.train()
    assert not dropout.training and model.head.training
    x = torch.rand(2, 3, 64, 64)
    torch.manual_seed(0)
    first = model.features(x)
    torch.manual_seed(1)
    assert torch.equal(first, model.features(x))  # frozen features do not change from one draw to the next
    freezing.apply(model, 2)
    model.train()
    assert model.backbone.features[-1].training and not model.backbone.features[0].training


def test_one_weight_decay_rule_and_one_validation_loss(shapes_dir: Path, tmp_path: Path) -> None:
    """No decay on biases on the fast path too; history's val_loss is metrics' val_loss (no smoothing)."""
    metrics, _ = run(shapes_dir, tmp_path / "run", epochs=3, label_smoothing=0.2)
    checkpoint = torch.load(tmp_path / "run" / "checkpoint.pt", weights_only=True)
    decays = sorted(group["weight_decay"] for group in checkpoint["optimizer"]["param_groups"])
    assert decays == [0.0, 1e-4]  # the head's weight decays, its bias does not
    history = RunDir.open(tmp_path / "run").read_history()
    best = next(row for row in history if row["epoch"] == metrics["best_epoch"])
    assert abs(best["val_loss"] - metrics["val_loss"]) < 1e-5


def test_bf16_only_where_the_gpu_has_it_natively(monkeypatch) -> None:
    import contextlib

    asked: list = []
    monkeypatch.setattr(torch.cuda, "device", lambda device: (asked.append(device), contextlib.nullcontext())[1])
    monkeypatch.setattr(torch.cuda, "is_bf16_supported",
                        lambda including_emulation=True: (asked.append(including_emulation), False)[1])
    assert engine.autocast_dtype(torch.device("cuda:1"), amp=True) == torch.float16  # emulated bf16: no
    assert asked == [torch.device("cuda:1"), False]  # asked about the run's device, without emulation
    assert engine.autocast_dtype(torch.device("cpu"), amp=True) is None
    assert engine.autocast_dtype(torch.device("cuda:0"), amp=False) is None
    assert engine.is_out_of_memory(RuntimeError("MPS backend out of memory (MPS allocated: 1 GB)"))
    assert not engine.is_out_of_memory(RuntimeError("mat1 and mat2 shapes cannot be multiplied"))


def test_the_mps_fallback_is_set_before_torch_loads() -> None:
    import subprocess
    import sys

    code = ("import sys, os; import tlstudio; assert 'torch' not in sys.modules; "
            "print(os.environ['PYTORCH_ENABLE_MPS_FALLBACK'])")
    env = {k: v for k, v in __import__("os").environ.items() if k != "PYTORCH_ENABLE_MPS_FALLBACK"}
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True)
    assert result.stdout.strip() == "1"


def test_gradient_accumulation_trains_as_the_whole_batch(shapes_dir, tmp_path) -> None:
    """--accumulate 4: each batch of 16 in 4 pieces of 4, one step: the same weights as one batch of 16
    (the head on cached embeddings: no BatchNorm to see the smaller pieces)."""
    runs = {}
    for accumulate in (1, 4):
        config = TrainConfig(data=str(shapes_dir), epochs=3, accumulate=accumulate, **SMALL)
        run = RunDir.create(tmp_path / f"acc{accumulate}", config.backbone)
        metrics = engine.train(scan(shapes_dir), config, run, lambda _e: None)
        assert metrics["accumulate"] == accumulate
        runs[accumulate] = run.read_history()
    for whole, pieces in zip(runs[1], runs[4], strict=True):
        assert abs(float(whole["train_loss"]) - float(pieces["train_loss"])) < 1e-4
        assert abs(float(whole["val_loss"]) - float(pieces["val_loss"])) < 1e-4
