"""Run a plain function off the GUI thread and get its result (or its error) back as a signal.

Scans, model builds, weight downloads and predictions go through here, so no slot ever blocks the window.
A task that is superseded (a new scan, a new evaluation) is dropped: it is asked to stop, and whatever it
delivers late never reaches the page. Closing the window never waits on a task: see `Task.busy`.
"""

from __future__ import annotations

import atexit
import gc
import logging
import threading
import traceback
from collections.abc import Callable
from typing import Any, ClassVar

from PySide6.QtCore import QObject, QThread, Signal, Slot

from tlstudio.core.control import Cancelled, Control
from tlstudio.core.errors import StudioError

log = logging.getLogger(__name__)
_IMPORT_LOCK = threading.Lock()
_imported = False
_EXIT_WAITS: set = set()  # QThreads (training) that the interpreter's exit must wait for


def wait_at_exit(thread: QThread) -> None:
    """A closed window no longer waits for its threads; the process does, once, before Qt objects die
    (a QThread destroyed while running aborts the process)."""
    _EXIT_WAITS.add(thread)


@atexit.register
def _wait_for_threads() -> None:
    for task in list(Task._alive):
        task.drop()
    for thread in [task.thread for task in list(Task._alive)] + list(_EXIT_WAITS):
        try:
            thread.quit()
            thread.wait()
        except RuntimeError:  # already deleted on the C++ side: nothing to wait for
            pass


def import_torch_once() -> None:
    """The first import of torch must not run in two threads at once (it fails half-initialised)."""
    global _imported
    with _IMPORT_LOCK:
        if _imported:
            return
        gc.disable()  # the imports make ~350,000 objects and no garbage: no full collection pauses the window
        try:
            import torch  # noqa: F401
            import torchvision  # noqa: F401
        finally:
            settle_long_lived()
            gc.enable()
        _imported = True


def settle_long_lived() -> None:
    """Move every object alive now out of the cyclic garbage collector's sight (gc.freeze).

    Why: after torch, torchvision and Qt are imported some 360,000 objects are tracked, and each full
    collection walks them all while holding the GIL: 110-240 ms in which the window cannot repaint,
    measured on a 2-core machine (benchmarks/bench_scan.py). Frozen objects are still freed by reference
    counting as usual; only cycles among them wait. Called after the imports and when a scan delivers a
    folder's file list (100,000 samples are as long-lived). The young generations are collected first (a
    few ms): garbage cycles made since the last freeze are not frozen with the rest."""
    gc.collect(1)
    gc.freeze()


class _Job(QObject):
    finished = Signal(object)
    failed = Signal(str, str)  # message, hint
    progress = Signal(int, int)

    def __init__(self, work: Callable[..., Any], control: Control, needs_torch: bool) -> None:
        super().__init__()
        self.work = work
        self.control = control
        self.needs_torch = needs_torch

    @Slot()
    def run(self) -> None:
        try:
            if self.needs_torch:
                import_torch_once()
            result = self.work(self.progress.emit, self.control)
        except Cancelled:
            self.failed.emit("Cancelled.", "")
        except StudioError as exc:
            self.failed.emit(exc.message, exc.hint)
        except Exception as exc:  # a bug: keep the window alive and say so
            log.error("background task failed:\n%s", traceback.format_exc())
            self.failed.emit(f"Unexpected error: {type(exc).__name__}: {exc}", "Details are in the log.")
        else:
            self.finished.emit(result)


class Task(QObject):
    """`work(progress, control)` runs in its own thread; connect to `finished`, `failed`, `progress`.
    `needs_torch=False`: work that never touches torch starts at once instead of after its import (seconds)."""

    finished = Signal(object)
    failed = Signal(str, str)
    progress = Signal(int, int)
    done = Signal()

    _alive: ClassVar[set[Task]] = set()
    # while the window is built, work that would import torch waits: the import in a thread takes the GIL from
    # the GUI thread and made building the window 1.7 s instead of 1.0 s (benchmarks/bench_relaunch.py)
    _held: ClassVar[list[Task] | None] = None

    def __init__(self, work: Callable[..., Any], parent: QObject | None = None, needs_torch: bool = True) -> None:
        super().__init__(parent)
        self.control = Control()
        self.dropped = False
        self.thread = QThread()
        self.job = _Job(work, self.control, needs_torch)
        self.job.moveToThread(self.thread)
        self.thread.started.connect(self.job.run)
        self.job.finished.connect(self._relay_finished)
        self.job.failed.connect(self._relay_failed)
        self.job.progress.connect(self._relay_progress)
        self.job.finished.connect(self.thread.quit)
        self.job.failed.connect(self.thread.quit)
        self.thread.finished.connect(self._cleanup)

    def start(self) -> Task:
        if Task._held is not None and self.job.needs_torch and not _imported:
            Task._held.append(self)
            return self
        Task._alive.add(self)  # keep Python references until the thread is done
        self.thread.start()
        return self

    def cancel(self) -> None:
        self.control.cancel()

    def drop(self) -> None:
        """Superseded: stop as soon as the work allows, and deliver nothing (late results are dropped)."""
        self.dropped = True
        self.control.cancel()

    def _relay_finished(self, result: object) -> None:
        if not self.dropped:
            self.finished.emit(result)

    def _relay_failed(self, message: str, hint: str) -> None:
        if not self.dropped:
            self.failed.emit(message, hint)

    def _relay_progress(self, done: int, total: int) -> None:
        if not self.dropped:
            self.progress.emit(done, total)

    def wait(self, ms: int = 30000) -> bool:
        self.control.cancel()
        self.thread.quit()
        return self.thread.wait(ms)

    def _cleanup(self) -> None:
        Task._alive.discard(self)
        self.done.emit()

    @classmethod
    def hold_torch_work(cls) -> None:
        """From now until `release_torch_work`, tasks that need torch are kept, not started."""
        if cls._held is None:
            cls._held = []

    @classmethod
    def release_torch_work(cls) -> None:
        held, cls._held = cls._held or [], None
        for task in held:
            if not task.dropped:
                task.start()

    @classmethod
    def wait_all(cls, ms: int = 30000) -> bool:
        """Cancel every task and wait for its thread; False if one was still running after `ms`."""
        return all([task.wait(ms) for task in list(cls._alive)])

    @classmethod
    def drop_all(cls) -> None:
        for task in list(cls._alive):
            task.drop()

    @classmethod
    def busy(cls) -> bool:
        return any(task.thread.isRunning() for task in cls._alive)
