"""Fault injection: disk full, read-only output, out of memory, files vanishing, hostile run files."""

from __future__ import annotations

import errno
import pickle
from pathlib import Path

import pytest
import torch

from tlstudio.core.data.scan import scan
from tlstudio.core.errors import OutOfMemoryError, RunError, StorageError
from tlstudio.core.models.saved import load_model
from tlstudio.core.models.transfer_model import TransferModel
from tlstudio.core.store import atomic
from tlstudio.core.store.runs import RunDir
from tlstudio.core.training import engine
from tlstudio.core.training import events as ev
from tlstudio.core.training.config import TrainConfig

SMALL = dict(backbone="mobilenet_v3_small", pretrained="none", batch_size=16, cache_features=False)


def _train(data: Path, out: Path, events: list | None = None, **overrides):
    config = TrainConfig(data=str(data), **{**SMALL, **overrides})
    sink = events.append if events is not None else (lambda _e: None)
    return engine.train(scan(data), config, RunDir.create(out, config.backbone), sink)


def test_disk_full_mid_run_is_explained_and_keeps_the_last_checkpoint(shapes_dir, tmp_path, monkeypatch) -> None:
    real_save = atomic.torch_save
    saves = {"n": 0}

    def filling_disk(path, obj):
        saves["n"] += Path(path).name == "checkpoint.pt"
        if saves["n"] == 3 and Path(path).name == "checkpoint.pt":  # the third epoch's checkpoint: disk full
            atomic._atomic(path, lambda tmp: (tmp.write_bytes(b"partial"),
                                              (_ for _ in ()).throw(OSError(errno.ENOSPC, "No space left"))))
        return real_save(path, obj)

    monkeypatch.setattr(atomic, "torch_save", filling_disk)
    with pytest.raises(StorageError) as info:
        _train(shapes_dir, tmp_path / "run", epochs=5)
    assert "disk is full" in info.value.message and "--resume" in info.value.hint
    checkpoint = torch.load(tmp_path / "run" / "checkpoint.pt", weights_only=True)
    assert checkpoint["epoch"] == 2  # the previous epoch's file is intact
    assert not [p for p in (tmp_path / "run").iterdir() if p.name.endswith(".tmp")]  # no debris
    monkeypatch.setattr(atomic, "torch_save", real_save)
    resumed = engine.resume(RunDir.open(tmp_path / "run"), lambda _e: None)
    assert resumed["epochs"] == 5


def test_read_only_output_folder_is_explained(shapes_dir, tmp_path, monkeypatch) -> None:
    def refuse(*_args, **_kwargs):
        raise PermissionError(errno.EACCES, "Permission denied")

    monkeypatch.setattr(atomic.tempfile, "mkstemp", refuse)
    with pytest.raises(StorageError, match="read-only"):
        _train(shapes_dir, tmp_path / "run", epochs=1)


@pytest.mark.parametrize("error", [
    torch.OutOfMemoryError("CUDA out of memory (simulated)"),
    RuntimeError("MPS backend out of memory (MPS allocated: 8.00 GB, other allocations: 1.00 GB) (simulated)"),
], ids=["cuda", "mps"])
def test_out_of_memory_accumulates_gradients_to_keep_the_batch(shapes_dir, tmp_path, monkeypatch, error) -> None:
    """Only 4 files fit at a time: the run halves its micro-batch twice (16 -> 8 -> 4), each time from the
    start, and trains with the batch it was asked for (16) in 4 accumulated pieces."""
    real_forward = TransferModel.forward

    def small_memory(self, images):
        if images.shape[0] > 4:
            raise error
        return real_forward(self, images)

    monkeypatch.setattr(TransferModel, "forward", small_memory)
    events: list = []
    metrics = _train(shapes_dir, tmp_path / "run", events, epochs=2, unfreeze="1", augment="light")
    assert metrics["status"] == "completed" and metrics["batch_size"] == 16 and metrics["accumulate"] == 4
    problems = [e.message for e in events if isinstance(e, ev.Problem)]
    assert any("Out of memory with 16 files per step; starting again with 8 files per step" in p for p in problems)
    assert any("with 4 files per step, accumulated 4 times: the same batch of 16" in p for p in problems)
    assert [row["epoch"] for row in RunDir.open(tmp_path / "run").read_history()] == [1, 2]
    checkpoint = torch.load(tmp_path / "run" / "checkpoint.pt", weights_only=True)
    assert checkpoint["accumulate"] == 4  # a resumed run keeps the pieces that fit


def test_out_of_memory_with_one_file_per_step_is_a_clear_error(shapes_dir, tmp_path, monkeypatch) -> None:
    def no_memory(self, images):
        raise torch.OutOfMemoryError("CUDA out of memory (simulated)")

    monkeypatch.setattr(TransferModel, "forward", no_memory)
    with pytest.raises(OutOfMemoryError) as info:
        _train(shapes_dir, tmp_path / "run", epochs=1, unfreeze="1")
    assert "1 file(s) per step" in info.value.message and "smaller backbone" in info.value.hint


def test_a_file_deleted_during_training_is_skipped_and_named(tmp_path) -> None:
    from tlstudio.demo import make_image_folder

    data = make_image_folder(tmp_path / "d", classes=("a", "b"), per_class=8, size=(48, 48))
    spec = scan(data)
    victim = Path(spec.train[3].path)
    config = TrainConfig(data=str(data), epochs=3, unfreeze="1", augment="light", **SMALL)
    events: list = []

    def delete_after_first_epoch(event) -> None:
        events.append(event)
        if isinstance(event, ev.EpochEnd) and event.epoch == 1:
            victim.unlink()

    metrics = engine.train(spec, config, RunDir.create(tmp_path / "run", config.backbone), delete_after_first_epoch)
    assert metrics["status"] == "completed" and metrics["epochs"] == 3
    problems = [e for e in events if isinstance(e, ev.Problem)]
    assert len(problems) == 1 and problems[0].files == [str(victim)]  # named once, not every epoch
    assert "file not found" in (tmp_path / "run" / "skipped.tsv").read_text()


class _Evil:
    def __reduce__(self):
        return (eval, ("__import__('os').system('echo pwned')",))


def test_a_run_folder_with_a_code_running_model_file_is_refused(shapes_dir, tmp_path) -> None:
    _train(shapes_dir, tmp_path / "run", epochs=1)
    with open(tmp_path / "run" / "model.pt", "wb") as handle:
        pickle.dump({"format": "tlstudio-model", "x": _Evil()}, handle)
    with pytest.raises(RunError, match="could run code"):
        load_model(RunDir.open(tmp_path / "run"))


def test_a_model_file_for_another_class_count_says_so(shapes_dir, tmp_path) -> None:
    _train(shapes_dir, tmp_path / "run", epochs=1)
    payload = torch.load(tmp_path / "run" / "model.pt", weights_only=True)
    payload["classes"] = payload["classes"][:2]
    torch.save(payload, tmp_path / "run" / "model.pt")
    with pytest.raises(RunError, match="head for 3 classes but lists 2"):
        load_model(RunDir.open(tmp_path / "run"))
