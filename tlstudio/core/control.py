"""Pause / resume / cancel flags, set from any thread, checked by long work between batches."""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager


class Cancelled(Exception):
    """Raised inside long work when the user cancels; unwinds so end-of-run hooks still run."""


class Control:
    def __init__(self) -> None:
        self._cancel = threading.Event()
        self._running = threading.Event()
        self._running.set()

    def cancel(self) -> None:
        self._cancel.set()
        self._running.set()  # a paused run must wake up to notice

    def pause(self) -> None:
        self._running.clear()

    def resume(self) -> None:
        self._running.set()

    @property
    def cancelled(self) -> bool:
        return self._cancel.is_set()

    @property
    def paused(self) -> bool:
        return not self._running.is_set()

    def wait_while_paused(self) -> None:
        """Block while paused; a cancel wakes it (work that must finish, such as an epoch's validation pass)."""
        while not self._running.wait(timeout=0.2):
            pass

    def checkpoint(self) -> None:
        """Block while paused; raise `Cancelled` once cancel was asked for."""
        while not self._running.wait(timeout=0.2):
            pass
        if self._cancel.is_set():
            raise Cancelled()


@contextmanager
def stop_on_signals(control: Control, on_stop: Callable[[], None] | None = None) -> Iterator[list[int]]:
    """Ctrl-C or SIGTERM (a service manager, the launcher stopping the other ranks, a logout) stops long work
    after its current step, which saves; a second Ctrl-C aborts (KeyboardInterrupt). Yields the signals received,
    in order; the previous handlers come back at the end. `on_stop` says so to whoever watches."""
    received: list[int] = []

    def on_signal(signum: int, _frame) -> None:
        if control.cancelled and signum == signal.SIGINT:
            raise KeyboardInterrupt
        received.append(signum)
        if on_stop is not None:
            on_stop()
        control.cancel()

    previous = {kind: signal.signal(kind, on_signal) for kind in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield received
    finally:
        for kind, handler in previous.items():
            signal.signal(kind, handler)
