"""The embedding cache behind the fast path: what the frozen backbone made of each file, kept on disk.

A bucket per (backbone, weights, preprocessing, pipeline version, library versions, compute device and
precision): anything that changes the numbers changes the bucket, so an older decoding is never served.
Inside a bucket, entries are keyed per file by (path, size, mtime) and stored as raw float16 rows in
segments that are appended to as extraction goes (a cancelled extraction keeps what it finished), read
through memory maps (a warm bucket of 100,000 files costs its index, not its rows, in memory) and merged
when they pile up. Buckets past the size limit are evicted, least recently used first. The cache is optional: a
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
from tlstudio.core.store.atomic import write_json
from tlstudio.core.training import mapped

log = logging.getLogger(__name__)

STORE_DTYPE = torch.float16  # on disk and in every run, cold cache or warm: one dtype, one model
DEFAULT_LIMIT_MB = 4096
MERGE_SHARDS = 48  # more segments than this in a bucket: merge them into one when it is next read
MERGE_QUIET_SECONDS = 3600  # a segment written to this recently may have a live writer: never merged away
FORMAT = 2  # segments of raw float16 rows, memory-mapped (1: torch.save shards, read whole into memory)
SEGMENT, ROWS, KEYS = "segment", ".f16", ".keys"

Location = tuple[str, int, int]  # (segment, first row, rows)


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
        "format": FORMAT,
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
    """One bucket's segments. `None` directory: a cache that keeps nothing (--no-cache): its rows go to a
    scratch folder that `close()` removes, so a run without a cache is as lean as one with it.

    A segment is written by one process only (named by time and pid) and only ever appended to: rows
    first, then their keys, so a kill mid-write leaves keys that point at rows on disk, never past them.
    Reading maps the rows files (mapped.py): nothing of a bucket is held in memory but its index."""

    def __init__(self, directory: Path | None, info: dict[str, Any], merge: bool = True) -> None:
        self.keep = directory is not None
        self.directory = directory
        self.info = info
        self.merge = merge  # processes of one launch share a bucket: one of them alone merges its segments
        self.writable = True
        self.warning = ""
        self._index: dict[str, Location] = {}
        self._arrays: dict[str, torch.Tensor] = {}  # segment name -> its mapped rows (re-mapped as it grows)
        self._sizes: dict[str, int] = {}  # segment name -> rows known to be on disk
        self._writer: str | None = None
        self._dim = 0

    def index(self) -> dict[str, Location]:
        """file key -> where its rows are; reads the keys of every segment and maps its rows (none read yet)."""
        if self.directory is None or not self.directory.is_dir():
            return self._index
        segments = sorted(self.directory.glob(f"{SEGMENT}-*{KEYS}"))
        for keys_file in segments:
            name = keys_file.name[: -len(KEYS)]
            if name == self._writer:
                continue
            with contextlib.suppress(OSError, RuntimeError):  # gone meanwhile (merged by another): a miss
                self._read_segment(name, keys_file)
        self._touch()
        if self.merge and len(segments) > MERGE_SHARDS and self._index:
            self._merge(segments)
        return self._index

    def rows(self, location: Location) -> torch.Tensor:
        """(count, dim) float16 rows of one file: a view of the mapped segment."""
        name, first, count = location
        array = self._arrays.get(name)
        if array is None or array.shape[0] < first + count:
            assert self.directory is not None
            array = mapped.map_rows(self.directory / f"{name}{ROWS}", self._sizes[name], self._dim)
            self._arrays[name] = array
        return array[first : first + count]

    def append(self, entries: dict[str, torch.Tensor]) -> bool:
        """Add (W, D) rows per file key to this process's segment; False where the disk refused them (a
        full or read-only disk turns the cache off for the rest of the run: slower, never failed)."""
        if not entries:
            return True
        if not self.writable:
            return False
        try:
            directory = self._folder()
            if self._writer is None:
                self._writer = f"{SEGMENT}-{time.time_ns():020d}-{os.getpid()}"
                self._sizes[self._writer] = 0
            name = self._writer
            dim = int(next(iter(entries.values())).shape[1])
            first = self._sizes[name]
            lines = [json.dumps({"dim": dim})] if first == 0 else []
            with open(directory / f"{name}{ROWS}", "ab") as handle:
                for key, feat in entries.items():
                    handle.write(feat.to(STORE_DTYPE).contiguous().numpy().tobytes())
                    lines.append(json.dumps({"key": key, "row": first, "count": int(feat.shape[0])}))
                    first += int(feat.shape[0])
            with open(directory / f"{name}{KEYS}", "a", encoding="ascii") as handle:
                handle.write("\n".join(lines) + "\n")
        except (OSError, RuntimeError) as exc:
            self.writable = False
            where = self.directory.parent if self.directory is not None else "the scratch folder"
            self.warning = (f"The embedding cache in {where} cannot be written ({exc}); "
                            "this run goes on without it (only slower next time).")
            log.warning(self.warning)
            return False
        self._dim = dim
        row = self._sizes[name]
        for key, feat in entries.items():
            self._index[key] = (name, row, int(feat.shape[0]))
            row += int(feat.shape[0])
        self._sizes[name] = row
        return True

    def close(self) -> None:
        """Drop the mappings; a bucket that keeps nothing removes its scratch folder."""
        self._arrays.clear()
        if not self.keep and self.directory is not None:
            shutil.rmtree(self.directory, ignore_errors=True)
            self.directory = None
            self._index.clear()

    def _folder(self) -> Path:
        if self.directory is None:  # --no-cache: a scratch bucket of this run's own
            scratch = mapped.scratch_dir()
            if scratch is None:
                raise OSError("no scratch folder")
            self.directory = scratch / f"rows-{os.getpid()}-{time.time_ns()}"
        self.directory.mkdir(parents=True, exist_ok=True)
        if self.keep and not (self.directory / "bucket.json").is_file():
            write_json(self.directory / "bucket.json", self.info)
        return self.directory

    def _read_segment(self, name: str, keys_file: Path) -> None:
        assert self.directory is not None
        lines = keys_file.read_text(encoding="ascii", errors="replace").splitlines()
        try:
            dim = int(json.loads(lines[0])["dim"])
        except (IndexError, ValueError, KeyError, TypeError):
            return
        on_disk = (self.directory / f"{name}{ROWS}").stat().st_size // (2 * dim) if dim > 0 else 0
        self._dim = dim
        self._sizes[name] = on_disk
        # mapped now, not when first read: a segment another process merges away later stays readable here
        self._arrays[name] = mapped.map_rows(self.directory / f"{name}{ROWS}", on_disk, dim)
        for line in lines[1:]:
            try:
                entry = json.loads(line)
                location = (name, int(entry["row"]), int(entry["count"]))
            except (ValueError, KeyError, TypeError):
                continue  # a line cut short by a kill
            if location[1] + location[2] <= on_disk:
                self._index[str(entry["key"])] = location

    def _merge(self, segments: list[Path]) -> None:
        """Many segments (many runs appended): copy every entry into one new segment, then drop the old
        ones, except any written to within the last hour (another process may still be appending to it)."""
        quiet = time.time() - MERGE_QUIET_SECONDS
        segments = [k for k in segments if _mtime(k.parent / f"{k.name[: -len(KEYS)]}{ROWS}") < quiet]
        if len(segments) <= 1:
            return
        names = {k.name[: -len(KEYS)] for k in segments}
        before = dict(self._index)
        entries = [(key, location) for key, location in before.items() if location[0] in names]
        writer, self._writer = self._writer, None
        for start in range(0, len(entries), 1024):
            part = entries[start : start + 1024]
            if not self.append({key: self.rows(location).clone() for key, location in part}):
                self._index = before
                self._writer = writer
                return
        merged, self._writer = self._writer, writer
        for keys_file in segments:
            name = keys_file.name[: -len(KEYS)]
            if name in (merged, writer):
                continue
            self._arrays.pop(name, None)
            with contextlib.suppress(OSError):  # Windows: a file another process maps cannot go yet
                keys_file.unlink(missing_ok=True)
                (keys_file.parent / f"{name}{ROWS}").unlink(missing_ok=True)
        log.info("merged %d cache segments of %s", len(segments), self.directory)

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
        shards = [*path.glob(f"{SEGMENT}-*{KEYS}"), *path.glob("shard-*.pt")]  # shard-*.pt: format 1
        size = sum(_size(part) for part in path.iterdir())
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


def _mtime(path: Path) -> float:
    try:
        return path.stat().st_mtime
    except OSError:
        return 0.0


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0


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
