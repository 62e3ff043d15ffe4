"""The embedding cache behind the fast path: what the frozen backbone made of each file, kept on disk.

A bucket per (backbone, weights, preprocessing, pipeline version, library versions, compute device and
precision): anything that changes the numbers changes the bucket, so an older decoding is never served.
Inside a bucket, entries are keyed per file by (path, size, mtime) and stored as float16 in shards that
are appended as extraction goes (a cancelled extraction keeps what it finished) and merged when they
pile up. Buckets past the size limit are evicted, least recently used first. The cache is optional: a
disk that cannot take it costs speed, never the run.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from tlstudio.core.data.pipelines import PIPELINE_VERSION
from tlstudio.core.store.atomic import torch_save, write_json

log = logging.getLogger(__name__)

STORE_DTYPE = torch.float16  # on disk and in every run, cold cache or warm: one dtype, one model
DEFAULT_LIMIT_MB = 4096
MERGE_SHARDS = 48  # more shards than this in a bucket: merge them into one when it is next read


def limit_bytes() -> int:
    try:
        return int(float(os.environ.get("TLSTUDIO_CACHE_LIMIT_MB", DEFAULT_LIMIT_MB)) * 2**20)
    except ValueError:
        return DEFAULT_LIMIT_MB * 2**20


def bucket_key(backbone: str, weights_id: str, description: dict, compute: str) -> tuple[str, dict[str, Any]]:
    """(the bucket's name, what it was made from): `compute` names the device type and autocast dtype."""
    import torchaudio
    import torchvision

    info = {
        "backbone": backbone,
        "weights": weights_id,
        "pipeline": description,
        "pipeline_version": PIPELINE_VERSION,
        "versions": {"torch": torch.__version__, "torchvision": torchvision.__version__,
                     "torchaudio": torchaudio.__version__},
        "dtype": str(STORE_DTYPE).replace("torch.", ""),
        "compute": compute,
    }
    text = json.dumps(info, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:24], info


def file_key(path: str) -> str | None:
    try:
        stat = os.stat(path)
    except OSError:
        return None
    return f"{path}|{stat.st_size}|{stat.st_mtime_ns}"


class Bucket:
    """One bucket's shards. `None` directory: a cache that keeps nothing (--no-cache)."""

    def __init__(self, directory: Path | None, info: dict[str, Any], merge: bool = True) -> None:
        self.directory = directory
        self.info = info
        self.merge = merge  # processes of one launch share a bucket: one of them alone merges its shards
        self.writable = directory is not None
        self.warning = ""

    def load(self) -> dict[str, torch.Tensor]:
        if self.directory is None or not self.directory.is_dir():
            return {}
        found: dict[str, torch.Tensor] = {}
        shards = sorted(self.directory.glob("shard-*.pt"))
        for shard in shards:
            try:
                blob = torch.load(shard, map_location="cpu", weights_only=True)
                rows = torch.split(blob["features"], blob["counts"].tolist())
                found.update(zip(blob["keys"], rows, strict=True))
            except Exception as exc:  # a damaged shard is only a slower run
                log.warning("ignoring unreadable cache shard %s: %s", shard, exc)
        self._touch()
        if self.merge and len(shards) > MERGE_SHARDS and found:
            self._merge(found, shards)
        return found

    def append(self, entries: dict[str, torch.Tensor]) -> None:
        """Store (W, D) features per file key as one new shard; a full or read-only disk disables the cache."""
        if not self.writable or not entries or self.directory is None:
            return
        keys = list(entries)
        blob = {"keys": keys, "counts": torch.tensor([entries[k].shape[0] for k in keys]),
                "features": torch.cat([entries[k].to(STORE_DTYPE) for k in keys])}
        name = f"shard-{time.time_ns():020d}-{os.getpid()}.pt"
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            if not (self.directory / "bucket.json").is_file():
                write_json(self.directory / "bucket.json", self.info)
            torch_save(self.directory / name, blob)
        except (OSError, RuntimeError) as exc:  # torch.save reports a full disk as RuntimeError
            self.writable = False
            self.warning = (f"The embedding cache in {self.directory.parent} cannot be written ({exc}); "
                            "this run goes on without it (only slower next time).")
            log.warning(self.warning)

    def _merge(self, found: dict[str, torch.Tensor], shards: list[Path]) -> None:
        before = len(shards)
        self.append(found)
        if self.writable:
            for shard in shards:
                shard.unlink(missing_ok=True)
            log.info("merged %d cache shards of %s", before, self.directory)

    def _touch(self) -> None:
        if self.directory is not None:
            with contextlib.suppress(OSError):
                (self.directory / "last_used").write_text(str(time.time()))


@dataclass(frozen=True)
class BucketInfo:
    name: str
    path: Path
    bytes: int
    files: int
    last_used: float
    backbone: str


def buckets(directory: Path) -> list[BucketInfo]:
    found = []
    if not directory.is_dir():
        return found
    for path in directory.iterdir():
        if not path.is_dir():
            continue
        shards = list(path.glob("shard-*.pt"))
        size = sum(shard.stat().st_size for shard in shards if shard.exists())
        try:
            last_used = float((path / "last_used").read_text())
        except (OSError, ValueError):
            last_used = path.stat().st_mtime
        try:
            info = json.loads((path / "bucket.json").read_text(encoding="utf-8"))
        except (OSError, ValueError):
            info = {}
        found.append(BucketInfo(path.name, path, size, len(shards), last_used, str(info.get("backbone", "?"))))
    return sorted(found, key=lambda b: -b.last_used)


def evict(directory: Path, limit: int, keep: str = "") -> list[BucketInfo]:
    """Remove least recently used buckets until the cache fits `limit` bytes (never the bucket `keep`)."""
    removed = []
    present = buckets(directory)
    total = sum(b.bytes for b in present)
    for bucket in sorted(present, key=lambda b: b.last_used):
        if total <= limit:
            break
        if bucket.name == keep:
            continue
        shutil.rmtree(bucket.path, ignore_errors=True)
        total -= bucket.bytes
        removed.append(bucket)
    return removed


def clear(directory: Path) -> int:
    """Remove every bucket; returns the bytes freed."""
    freed = sum(b.bytes for b in buckets(directory))
    if directory.is_dir():
        shutil.rmtree(directory, ignore_errors=True)
    return freed
