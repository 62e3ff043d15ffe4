"""The training worker: runs a run of the core's run service (core/training/session.py) in a QThread and
relays its events as Qt signals. Where the run goes (this process, processes of its own, a resume) is the
service's choice, the same as for the command line.

Batch events are coalesced (at most one signal per ~50 ms, carrying all batches since the last), so a
fast run cannot flood the GUI thread's event queue. The Stop and Pause buttons act on the engine's
Control directly: a queued slot on this worker would never run while its thread is busy in the loop.
"""

from __future__ import annotations

import threading
import time
import traceback
from pathlib import Path
from typing import Any

from PySide6.QtCore import QObject, QThread, Signal, Slot

from tlstudio.core.data.spec import DatasetSpec
from tlstudio.core.errors import StudioError
from tlstudio.core.training import events as ev
from tlstudio.core.training.config import TrainConfig

FLUSH_SECONDS = 0.05


class TrainWorker(QObject):
    event = Signal(object)  # any engine event except BatchEnd
    batches = Signal(list)  # list[BatchEnd]
    failed = Signal(str, str)
    done = Signal(object)  # final metrics, or None

    def __init__(self, spec: DatasetSpec | None, config: TrainConfig, run_dir: Path, resume: bool = False) -> None:
        super().__init__()
        from tlstudio.core.training import session

        self.config, self.run_dir = config, Path(run_dir)
        request = session.RunRequest(resume=self.run_dir) if resume else \
            session.RunRequest(spec, config, self.run_dir)
        self.handle = session.start(request)
        self.control = self.handle.control
        self._pending: list[ev.BatchEnd] = []
        self._lock = threading.Lock()
        self._last_flush = 0.0

    @property
    def on_processes(self) -> bool:
        """This run trains on processes of its own (several devices), followed from this thread."""
        return self.handle.on_processes

    def _relay(self, event: Any) -> None:
        if isinstance(event, ev.BatchEnd):
            with self._lock:
                self._pending.append(event)
            if time.perf_counter() - self._last_flush >= FLUSH_SECONDS:
                self._flush()
            return
        self._flush()
        self.event.emit(event)

    def _flush(self) -> None:
        with self._lock:
            pending, self._pending = self._pending, []
        self._last_flush = time.perf_counter()
        if pending:
            self.batches.emit(pending)

    @Slot()
    def run(self) -> None:
        metrics = None
        try:  # a failure to start (torch missing or broken) reaches the user like any other failure
            from tlstudio.gui.tasks import import_torch_once

            import_torch_once()
            if self.control.cancelled:  # stopped (or the window closed) before the engine began
                raise StudioError("Stopped before training began.")
            metrics = self.handle.run(self._relay)
        except StudioError as exc:
            self._flush()
            self.failed.emit(exc.message, exc.hint)
        except Exception as exc:
            self._flush()
            self.failed.emit(f"Unexpected error: {type(exc).__name__}: {exc}", traceback.format_exc(limit=3))
        self._flush()
        self.done.emit(metrics)


class TrainingSession(QObject):
    """Owns the thread and the worker; `stop()` cancels cleanly and waits (used when the window closes)."""

    def __init__(self, worker: TrainWorker) -> None:
        super().__init__()
        self.worker = worker
        self.thread = QThread()
        worker.moveToThread(self.thread)
        self.thread.started.connect(worker.run)
        worker.done.connect(self.thread.quit)
        from tlstudio.gui.tasks import wait_at_exit

        wait_at_exit(self.thread)

    def start(self) -> None:
        self.thread.start()

    def pause(self) -> None:
        if not self.worker.control.cancelled:  # pausing a stopping run would block it for ever
            self.worker.control.pause()

    def resume(self) -> None:
        self.worker.control.resume()

    def stop(self, wait_ms: int = 0) -> bool:
        """Cancel; with `wait_ms`, wait that long for the thread. True when the thread has ended."""
        self.worker.control.cancel()
        if wait_ms:
            self.thread.quit()
            return self.thread.wait(wait_ms)
        return not self.thread.isRunning()

    def is_running(self) -> bool:
        return self.thread.isRunning()
