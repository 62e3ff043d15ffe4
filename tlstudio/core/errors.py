"""Problems the user can fix: one clear sentence plus what to do, never a traceback.

Each kind carries the exit code the command line returns, documented in the README.
"""

from __future__ import annotations


class StudioError(Exception):
    exit_code = 1

    def __init__(self, message: str, hint: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return f"{self.message} {self.hint}".strip()


class DataError(StudioError):
    """The folder cannot give a classifier: missing, empty, one class, nothing decodable."""

    exit_code = 3


class WeightsError(StudioError):
    """Pretrained weights are missing (offline), corrupt, unsafe or for another model."""

    exit_code = 4


class ConfigError(StudioError):
    """An impossible combination of settings."""

    exit_code = 2


class RunError(StudioError):
    """A run folder that cannot be read or resumed."""

    exit_code = 5


class StorageError(RunError):
    """Writing the run folder failed (disk full, read-only, removed); what was saved before is intact."""


class OutOfMemoryError(StudioError):
    """The device ran out of memory even after the automatic retry with a smaller batch."""

    exit_code = 6


class DivergedError(StudioError):
    """The loss stopped being a finite number: the run stops, the last good weights are kept."""

    exit_code = 8
