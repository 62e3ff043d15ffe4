"""Write-then-rename helpers: a crash or a kill leaves either the old file or the new one, never half."""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any, TextIO


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


_FILE_MODE = 0o666 & ~_umask()  # what open() would give; mkstemp alone gives 0600


@contextlib.contextmanager
def _replacing(path: Path, make_parents: bool = True) -> Iterator[Path]:
    """A temporary file beside `path` for the block to fill; fsynced and renamed onto `path` when the block
    ends without an error, removed when it fails."""
    path = Path(path)
    if make_parents:
        path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        yield tmp
        with open(tmp, "rb+") as handle:
            os.fsync(handle.fileno())
        os.chmod(tmp, _FILE_MODE)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def _atomic(path: Path, write: Callable[[Path], None]) -> Path:
    with _replacing(path) as tmp:
        write(tmp)
    return Path(path)


def write_text(path: Path, text: str) -> Path:
    """UTF-8; a file name that is not valid UTF-8 keeps its original bytes (surrogateescape)."""
    return _atomic(path, lambda tmp: tmp.write_text(text, encoding="utf-8", errors="surrogateescape"))


def write_lines(path: Path, lines: Iterable[str]) -> Path:
    """UTF-8 lines written as they come (a table of 100,000 rows is never one string in memory), renamed
    into place once all are written."""
    with writing(path) as handle:
        for line in lines:
            handle.write(line)
            handle.write("\n")
    return path


@contextlib.contextmanager
def writing(path: Path, make_parents: bool = True) -> Iterator[TextIO]:
    """A UTF-8 text handle whose file appears at `path` (write, fsync, rename) only when the block ends
    without an error; until then any older file stays as it was. A place the user named is not created
    (`make_parents=False`): a mistyped folder is an error, not a new folder."""
    with _replacing(path, make_parents) as tmp, open(tmp, "w", encoding="utf-8", errors="surrogateescape",
                                                     newline="") as handle:
        yield handle


def write_json(path: Path, data: Any) -> Path:
    """Readable UTF-8 JSON; where a string holds undecodable bytes (a non-UTF-8 file name), plain-ASCII JSON
    whose escapes give the same string back when read."""
    text = json.dumps(data, indent=2, ensure_ascii=False)
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        text = json.dumps(data, indent=2, ensure_ascii=True)
    return write_text(path, text + "\n")


def write_bytes(path: Path, data: bytes) -> Path:
    return _atomic(path, lambda tmp: tmp.write_bytes(data))


def torch_save(path: Path, obj: Any) -> Path:
    import torch

    return _atomic(path, lambda tmp: torch.save(obj, tmp))
