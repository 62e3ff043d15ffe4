"""The embedding cache: one dtype cold or warm, nothing served across versions, kept when cancelled,
bounded in size, and shown or cleared from the command line."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
import torch

from tlstudio.cli import main
from tlstudio.core.control import Control
from tlstudio.core.data.scan import scan
from tlstudio.core.store.paths import features_cache_dir
from tlstudio.core.store.runs import RunDir
from tlstudio.core.training import engine, feature_cache
from tlstudio.core.training import events as ev
from tlstudio.core.training.config import TrainConfig

SMALL = dict(backbone="mobilenet_v3_small", pretrained="none", batch_size=16)


@pytest.fixture()
def own_cache(tmp_path: Path, monkeypatch) -> Path:
    """A cache folder of this test's own (the session-wide one is shared with other tests)."""
    monkeypatch.setenv("TLSTUDIO_HOME", str(tmp_path / "home"))
    return features_cache_dir()


def _train(data: Path, out: Path, control: Control | None = None, events: list | None = None, **overrides):
    config = TrainConfig(data=str(data), **{**SMALL, **overrides})
    sink = events.append if events is not None else (lambda _e: None)
    return engine.train(scan(data), config, RunDir.create(out, config.backbone), sink, control)


def _head(run: Path) -> dict[str, torch.Tensor]:
    state = torch.load(run / "model.pt", weights_only=True)["state_dict"]
    return {k: v for k, v in state.items() if k.startswith("head.")}


def test_a_cold_and_a_warm_cache_train_the_same_model(shapes_dir: Path, tmp_path: Path, own_cache: Path) -> None:
    _train(shapes_dir, tmp_path / "cold", epochs=3, seed=7)
    assert feature_cache.buckets(own_cache)
    _train(shapes_dir, tmp_path / "warm", epochs=3, seed=7)
    _train(shapes_dir, tmp_path / "none", epochs=3, seed=7, cache_features=False)
    cold, warm, none = _head(tmp_path / "cold"), _head(tmp_path / "warm"), _head(tmp_path / "none")
    assert all(torch.equal(cold[k], warm[k]) and torch.equal(cold[k], none[k]) for k in cold)


def test_a_cancelled_extraction_keeps_what_it_finished(shapes_dir: Path, tmp_path: Path, own_cache: Path,
                                                       monkeypatch) -> None:
    from tlstudio.core.training import embedding

    monkeypatch.setattr(embedding, "APPEND_EVERY", 16)
    control = Control()

    def cancel_midway(event) -> None:
        if isinstance(event, ev.Progress) and event.stage == "embedding train" and event.done >= 32:
            control.cancel()

    config = TrainConfig(data=str(shapes_dir), epochs=2, **SMALL)
    result = engine.train(scan(shapes_dir), config, RunDir.create(tmp_path / "first", config.backbone),
                          cancel_midway, control)
    assert result["status"] == "cancelled"
    assert not (tmp_path / "first" / "model.pt").exists()  # nothing trained: no "best weights kept" claim
    kept = len(feature_cache.Bucket(next(own_cache.iterdir()), {}).index())
    assert kept >= 32
    again: list = []
    _train(shapes_dir, tmp_path / "second", events=again, epochs=1)
    first_report = next(e for e in again if isinstance(e, ev.Progress) and e.stage == "embedding train")
    assert first_report.done == kept  # these came from the cache; only the rest went through the backbone


def test_the_bucket_changes_with_anything_that_changes_the_numbers(monkeypatch) -> None:
    description = {"modality": "image", "preprocess": {"resize": 256}}
    base, info = feature_cache.bucket_key("resnet18", "w.pth", description, "cpu/None")
    assert info["versions"]["torch"] == torch.__version__ and info["dtype"] == "float16"
    assert feature_cache.bucket_key("resnet18", "w.pth", description, "cuda/torch.bfloat16")[0] != base
    monkeypatch.setattr(feature_cache, "PIPELINE_VERSION", 999)
    assert feature_cache.bucket_key("resnet18", "w.pth", description, "cpu/None")[0] != base
    monkeypatch.undo()
    monkeypatch.setattr(torch, "__version__", "0.0.1")
    assert feature_cache.bucket_key("resnet18", "w.pth", description, "cpu/None")[0] != base


def test_the_least_recently_used_buckets_are_evicted(tmp_path: Path) -> None:
    for age, name in enumerate(["newest", "middle", "oldest"]):
        bucket = feature_cache.Bucket(tmp_path / name, {"backbone": name})
        bucket.append({f"file{i}": torch.ones(1, 4096) for i in range(64)})  # 512 KB each
        (tmp_path / name / "last_used").write_text(str(time.time() - 1000 * age))
    removed = feature_cache.evict(tmp_path, limit=1_200_000, keep="oldest")
    assert [b.name for b in removed] == ["middle"]  # the oldest is in use by this run: kept
    assert sorted(p.name for p in tmp_path.iterdir()) == ["newest", "oldest"]


def test_an_unwritable_cache_only_costs_speed(shapes_dir: Path, tmp_path: Path, own_cache: Path) -> None:
    own_cache.parent.mkdir(parents=True, exist_ok=True)
    own_cache.write_text("a file where the cache folder should be")  # mkdir fails there, as on a full disk
    events: list = []
    metrics = _train(shapes_dir, tmp_path / "run", events=events, epochs=1)
    assert metrics["status"] == "completed"
    assert any(isinstance(e, ev.Problem) and "cache" in e.message for e in events)


def test_cache_info_and_clear_from_the_command_line(shapes_dir: Path, tmp_path: Path, own_cache: Path,
                                                    capsys) -> None:
    _train(shapes_dir, tmp_path / "run", epochs=1)
    assert main(["cache", "info"]) == 0
    out = capsys.readouterr().out
    assert "1 bucket(s)" in out and "mobilenet_v3_small" in out
    assert main(["cache", "clear"]) == 0
    assert "Removed" in capsys.readouterr().out
    assert not own_cache.exists() or not any(own_cache.iterdir())


def test_a_segment_cut_short_by_a_kill_serves_what_reached_the_disk(tmp_path: Path) -> None:
    bucket = feature_cache.Bucket(tmp_path / "b", {})
    rows = {f"file{i}": torch.randn(1 + i % 2, 8).half() for i in range(6)}
    bucket.append(rows)
    segment = next((tmp_path / "b").glob("*.f16"))
    keys = segment.with_suffix(".keys")
    with open(segment, "r+b") as handle:  # the last file's rows only half written
        handle.truncate(segment.stat().st_size - 8)
    keys.write_text(keys.read_text() + '{"key": "file9", "ro')  # a key line cut mid-way
    found = feature_cache.Bucket(tmp_path / "b", {}).index()
    assert sorted(found) == [f"file{i}" for i in range(5)]
    again = feature_cache.Bucket(tmp_path / "b", {})
    for key, location in again.index().items():
        assert torch.equal(again.rows(location), rows[key])


def test_many_segments_are_merged_into_one_with_the_same_rows(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(feature_cache, "MERGE_SHARDS", 3)
    monkeypatch.setattr(feature_cache, "MERGE_QUIET_SECONDS", -60)  # as if the runs were over an hour ago
    rows = {}
    for run in range(5):  # five runs, each appending its own segment
        entries = {f"run{run}-file{i}": torch.randn(2, 4).half() for i in range(3)}
        feature_cache.Bucket(tmp_path / "b", {}).append(entries)
        rows.update(entries)
    assert len(list((tmp_path / "b").glob("*.keys"))) == 5
    merged = feature_cache.Bucket(tmp_path / "b", {})
    index = merged.index()
    assert len(list((tmp_path / "b").glob("*.keys"))) == 1
    assert sorted(index) == sorted(rows)
    assert all(torch.equal(merged.rows(index[key]), value) for key, value in rows.items())


def test_spilled_rows_are_a_mapped_file_that_leaves_nothing_behind(tmp_path: Path, monkeypatch) -> None:
    from tlstudio.core.training import mapped

    monkeypatch.setenv("TLSTUDIO_HOME", str(tmp_path / "home"))
    chunks = [torch.randn(3, 16) for _ in range(4)]
    rows = mapped.spill(iter(chunks), 16)
    assert rows.dtype == torch.float16 and torch.equal(rows, torch.cat(chunks).half())
    assert not list(mapped.scratch_dir().iterdir())  # unlinked at once: the mapping keeps it alive
    maps = Path("/proc/self/maps")
    if maps.is_file():  # Linux: the rows are a file mapping (page cache), not the process's own memory
        assert any("rows-" in line and "(deleted)" in line for line in maps.read_text().splitlines())


def test_a_run_without_a_cache_leaves_no_scratch(shapes_dir: Path, tmp_path: Path, own_cache: Path) -> None:
    from tlstudio.core.training import mapped

    _train(shapes_dir, tmp_path / "run", epochs=1, cache_features=False)
    assert not own_cache.exists()
    assert not list(mapped.scratch_dir().iterdir())
