"""Pause / resume / cancel flags, set from any thread, checked by long work between batches."""

from __future__ import annotations

import threading


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
