"""A run folder on disk: the one record that the CLI, the GUI, evaluation and export all read.

    config.json      the settings (TrainConfig plus what was resolved: device, blocks, augmentation)
    dataset.json     the exact files of each split, and the files skipped with reasons
    labels.json      class names in label order, and the preprocessing
    history.csv      one row per epoch
    metrics.json     final metrics of the best epoch's weights on the validation split
    model.pt         the best weights (tensors only: loads with torch.load(weights_only=True))
    checkpoint.pt    the last epoch's full state, to resume

Every file is written atomically.
"""

from __future__ import annotations

import contextlib
import csv
import errno
import io
import itertools
import json
import os
import pickle
import socket
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tlstudio.core.errors import RunError, StorageError
from tlstudio.core.store import atomic
from tlstudio.core.store.paths import runs_home

HISTORY_COLUMNS = ["epoch", "phase", "train_loss", "train_acc", "val_loss", "val_acc", "lr", "seconds"]
REGRESSION_COLUMNS = [c.replace("_acc", "_mae") for c in HISTORY_COLUMNS]  # a regression scores by its MAE


@dataclass
class RunDir:
    path: Path

    @staticmethod
    def new_path(backbone: str) -> Path:
        """A fresh folder's path under the studio's runs (not made yet)."""
        stamp = time.strftime("%Y%m%d-%H%M%S")
        path = runs_home() / f"{stamp}-{backbone}"
        suffix = 1
        while path.exists():
            suffix += 1
            path = runs_home() / f"{stamp}-{backbone}-{suffix}"
        return path

    @classmethod
    def create(cls, out: str | Path | None, backbone: str) -> RunDir:
        path = Path(out).expanduser() if out else cls.new_path(backbone)
        if path.exists() and not path.is_dir():
            raise RunError(f"{path} is a file, not a folder.", "Choose a folder for --out.")
        if path.exists() and any(path.iterdir()):
            raise RunError(f"The output folder {path} is not empty.", "Choose a new --out folder, or --resume it.")
        try:
            path.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise RunError(f"Cannot create the run folder {path}: {exc.strerror or exc}.",
                           "Choose a writable --out folder.") from exc
        run = cls(path.resolve())
        run.acquire_lock()  # two trainings into one --out: exactly one gets here, the other stops (exit 5)
        return run

    @classmethod
    def open(cls, path: str | Path) -> RunDir:
        path = Path(path).expanduser()
        if not (path / "config.json").is_file():
            raise RunError(f"{path} is not a studio run folder (no config.json).")
        return cls(path.resolve())

    def acquire_lock(self) -> None:
        """One writer per run folder: a lock file created atomically (O_EXCL) holding the owner's pid and host.

        A lock whose process is gone (killed, crashed) is stale and taken over; one held by this process is
        re-entrant (the window may resume a run it created)."""
        lock = self.file(LOCK_FILE)
        me = f"{os.getpid()} {socket.gethostname()}"
        for _ in range(3):
            try:
                fd = os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            except FileExistsError:
                owner = _read_lock(lock)
                if owner == me:
                    return
                if owner is None or not _alive(owner):
                    lock.unlink(missing_ok=True)  # stale: its writer is gone
                    continue
                raise RunError(f"The run folder {self.path} is being written by another studio process "
                               f"(pid {owner.split()[0]}).",
                               "Wait for it to finish, or choose another --out folder.") from None
            except OSError as exc:
                raise StorageError(f"Cannot write in the run folder {self.path}: {exc.strerror or exc}.",
                                   "Choose a writable folder.") from exc
            with os.fdopen(fd, "w") as handle:
                handle.write(me)
            return
        raise RunError(f"Could not take the lock of {self.path}.", "Try again.")

    def release_lock(self) -> None:
        lock = self.file(LOCK_FILE)
        if _read_lock(lock) == f"{os.getpid()} {socket.gethostname()}":
            lock.unlink(missing_ok=True)

    def discard(self, created: tuple[str, ...]) -> None:
        """Remove what a run that failed before its first epoch wrote, and the folder if that empties it."""
        for name in (*created, LOCK_FILE):
            self.file(name).unlink(missing_ok=True)
        with contextlib.suppress(OSError):  # not empty (e.g. a resumable checkpoint) or already gone
            self.path.rmdir()

    def file(self, name: str) -> Path:
        return self.path / name

    def _guarded(self, name: str, write) -> Any:
        """Writes are atomic; a failure leaves the previous version and says what to do in plain words."""
        try:
            return write()
        except OSError as exc:
            if exc.errno == errno.ENOSPC:
                reason = "the disk is full"
            elif exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
                reason = "the folder is read-only or not yours"
            elif exc.errno == errno.ENOENT:
                reason = "the run folder was removed"
            else:
                reason = exc.strerror or str(exc)
            raise StorageError(
                f"Could not save {name} in {self.path}: {reason}. Files saved before are intact.",
                f"Free some space or fix the folder, then continue with `tlstudio train --resume {self.path}`.",
            ) from exc

    def write_json(self, name: str, data: Any) -> None:
        self._guarded(name, lambda: atomic.write_json(self.file(name), data))

    def read_json(self, name: str, kind: type = dict) -> Any:
        """A run file as JSON of the expected kind; damaged or foreign content is a RunError (exit 5)."""
        try:
            data = json.loads(self.file(name).read_text(encoding="utf-8", errors="surrogateescape"))
        except FileNotFoundError as exc:
            raise RunError(f"The run {self.path.name} has no {name}; it may not have finished an epoch.") from exc
        except (OSError, ValueError) as exc:
            raise RunError(f"{self.file(name)} cannot be read ({exc}); the run folder is damaged.",
                           "Start a new run, or restore the folder from a copy.") from exc
        if not isinstance(data, kind):
            raise RunError(f"{self.file(name)} does not hold what a studio run writes (a JSON {kind.__name__}).",
                           "Start a new run, or restore the folder from a copy.")
        return data

    def read_json_or(self, name: str, default: Any = None) -> Any:
        """A run file for a view that shows what it can: a missing or damaged file is `default`, not an error."""
        try:
            return self.read_json(name)
        except RunError:
            return default

    @property
    def has_results(self) -> bool:
        """metrics.json is there: the run finished, or stopped after an epoch (a model to evaluate and use)."""
        return self.file("metrics.json").is_file() and self.file("config.json").is_file()

    def settings(self) -> dict[str, Any]:
        """config.json: the run's settings and what they resolved to."""
        return self.read_json("config.json")

    def metrics(self) -> dict[str, Any]:
        return self.read_json("metrics.json")

    def started(self) -> float | None:
        """When the run began (its config.json was written), as a timestamp."""
        try:
            return self.file("config.json").stat().st_mtime
        except OSError:
            return None

    def write_history(self, rows: list[dict[str, Any]]) -> None:
        buffer = io.StringIO()
        columns = REGRESSION_COLUMNS if rows and "val_mae" in rows[0] else HISTORY_COLUMNS
        columns = columns + [key for key in ("old_val_acc", "old_val_mae") if rows and key in rows[0]]
        writer = csv.DictWriter(buffer, fieldnames=columns, lineterminator="\n")
        writer.writeheader()
        for row in rows:
            writer.writerow({key: row.get(key, "") for key in columns})
        self._guarded("history.csv", lambda: atomic.write_text(self.file("history.csv"), buffer.getvalue()))

    def write_text(self, name: str, text: str) -> None:
        self._guarded(name, lambda: atomic.write_text(self.file(name), text))

    def write_table(self, name: str, header: list[str], rows: Iterable[Sequence[Any]]) -> None:
        """A TSV whose cells survive tabs, newlines and undecodable bytes in file names (see tsv_cell);
        `rows` may be a generator: each line is written as it is made."""
        lines = itertools.chain(["\t".join(header)], ("\t".join(tsv_cell(str(cell)) for cell in row) for row in rows))
        self._guarded(name, lambda: atomic.write_lines(self.file(name), lines))

    def read_table(self, name: str) -> list[dict[str, str]]:
        path = self.file(name)
        if not path.is_file():
            return []
        lines = path.read_text(encoding="utf-8", errors="surrogateescape").splitlines()
        if not lines:
            return []
        header = lines[0].split("\t")
        return [dict(zip(header, (tsv_value(cell) for cell in line.split("\t")), strict=False)) for line in lines[1:]]

    def read_history(self) -> list[dict[str, Any]]:
        path = self.file("history.csv")
        if not path.is_file():
            return []
        with open(path, encoding="utf-8", newline="") as handle:
            rows = list(csv.DictReader(handle))
        out = []
        for row in rows:
            parsed: dict[str, Any] = {}
            for key, value in row.items():
                if key == "phase":
                    parsed[key] = value
                elif key == "epoch":
                    parsed[key] = int(value)
                else:
                    parsed[key] = float(value) if value not in ("", None) else None
            out.append(parsed)
        return out

    def save_torch(self, name: str, obj: Any) -> Path:
        def save() -> Path:
            try:
                return atomic.torch_save(self.file(name), obj)
            except RuntimeError as exc:  # torch.save reports a full disk as "file write failed"
                raise OSError(errno.ENOSPC if "write" in str(exc).lower() else errno.EIO, str(exc)) from exc

        return self._guarded(name, save)

    def load_torch(self, name: str) -> Any:
        import torch

        path = self.file(name)
        if not path.is_file():
            raise RunError(f"The run {self.path.name} has no {name}.")
        try:
            return torch.load(path, map_location="cpu", weights_only=True)
        except pickle.UnpicklingError as exc:
            raise RunError(f"{path} was refused: it is not a plain tensors file and could run code when opened.",
                           "Only open run folders from sources you trust.") from exc
        except Exception as exc:
            raise RunError(f"{path} cannot be read ({type(exc).__name__}); it may be damaged or not the studio's.",
                           "Start a new run, or resume from a copy of the folder.") from exc


LOCK_FILE = ".tlstudio.lock"


def _read_lock(lock: Path) -> str | None:
    try:
        return lock.read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError):
        return None


def _alive(owner: str) -> bool:
    """Is the lock's writer still running? (Another host's lock is trusted: we cannot see its processes.)"""
    pid_text, _, host = owner.partition(" ")
    if host and host != socket.gethostname():
        return True
    try:
        pid = int(pid_text)
        os.kill(pid, 0)
    except (ValueError, ProcessLookupError):
        return False
    except PermissionError:
        return True
    return True


_ESCAPES = {"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"}


def tsv_cell(text: str) -> str:
    """Backslash-escape what would break a TSV line (the PostgreSQL text format's rule)."""
    return "".join(_ESCAPES.get(char, char) for char in text)


def tsv_value(cell: str) -> str:
    out, chars = [], iter(cell)
    for char in chars:
        if char == "\\":
            nxt = next(chars, "")
            out.append({"t": "\t", "n": "\n", "r": "\r", "\\": "\\"}.get(nxt, nxt))
        else:
            out.append(char)
    return "".join(out)
