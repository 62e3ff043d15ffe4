"""Rows of embeddings that live in a file and are memory-mapped, not held in the process's own memory.

Why: a frozen run over 100,000 files holds 100,000 x 1,280 embeddings. Kept as tensors they are anonymous
memory that grows with the folder; mapped from a file they are page cache, which the system reads in
as the head's batches touch them and drops under pressure, so the run's own memory stays flat. A mapped
scratch file is unlinked at once where the system allows it (POSIX: the mapping keeps it alive, and a
crash leaves nothing behind); elsewhere it is removed when the process ends.
"""

from __future__ import annotations

import atexit
import contextlib
import logging
import os
import shutil
import time
from collections.abc import Iterable
from pathlib import Path

import torch

from tlstudio.core.store.paths import cache_home

log = logging.getLogger(__name__)

STALE_SECONDS = 24 * 3600  # scratch files left by a process that could not remove them (Windows, a crash)
_leftovers: list[Path] = []


def scratch_dir() -> Path | None:
    """A folder for this process's scratch rows, or None where none can be made (then rows stay in memory)."""
    directory = cache_home() / "scratch"
    _remove_leftovers()  # Windows: files whose mappings have gone since
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        log.warning("no scratch folder for embeddings (%s): they are kept in memory", exc)
        return None
    now = time.time()
    for old in directory.glob("rows-*"):  # files (spilled rows) and folders (--no-cache buckets)
        with contextlib.suppress(OSError):
            if now - old.stat().st_mtime > STALE_SECONDS:
                shutil.rmtree(old) if old.is_dir() else old.unlink()
    return directory


def map_rows(path: Path, rows: int, dim: int) -> torch.Tensor:
    """(rows, dim) float16 read from `path` on demand (copy-on-write mapping: the file is never changed)."""
    if rows == 0 or dim == 0:
        return torch.empty(rows, dim, dtype=torch.float16)
    return torch.from_file(str(path), shared=False, size=rows * dim, dtype=torch.float16).view(rows, dim)


def spill(chunks: Iterable[torch.Tensor], dim: int) -> torch.Tensor:
    """The chunks' rows, in order, as one mapped (rows, dim) float16 tensor (in memory where no file can be
    written: larger, never a failed run)."""
    chunks = list(chunks)  # views: cheap to hold, and a failed write can start again from them
    directory = scratch_dir()
    if directory is None:
        return _in_memory(chunks, dim)
    path = directory / f"rows-{os.getpid()}-{time.time_ns()}.f16"
    try:
        with open(path, "wb") as handle:
            for chunk in chunks:
                handle.write(chunk.to(torch.float16).contiguous().numpy().tobytes())
        mapped = map_rows(path, sum(int(chunk.shape[0]) for chunk in chunks), dim)
    except (OSError, RuntimeError) as exc:  # a full disk: at the write, the flush or the mapping
        log.warning("scratch file %s failed (%s): embeddings are kept in memory", path, exc)
        with contextlib.suppress(OSError):
            path.unlink()
        return _in_memory(chunks, dim)
    forget(path)
    return mapped


def forget(path: Path) -> None:
    """Remove a mapped file now if the system allows it (POSIX), else when the process ends."""
    try:
        path.unlink()
    except OSError:
        if not _leftovers:
            atexit.register(_remove_leftovers)
        _leftovers.append(path)


def _remove_leftovers() -> None:
    for path in list(_leftovers):
        with contextlib.suppress(OSError):
            path.unlink()
            _leftovers.remove(path)


def _in_memory(chunks: Iterable[torch.Tensor], dim: int) -> torch.Tensor:
    parts = [chunk.to(torch.float16) for chunk in chunks]
    return torch.cat(parts) if parts else torch.empty(0, dim, dtype=torch.float16)
