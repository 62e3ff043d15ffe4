"""Engine events as JSON lines: how a run in other processes (tlstudio train --devices N, launched by the
window) reports to the window that follows it, with the same events the in-process engine sends.

Every event is a flat dataclass of JSON values, so a line is {"event": class name, **fields}; a line that
is not one (the launcher's own words, a library's warning) is not an event and is left to the caller.
"""

from __future__ import annotations

import json
from dataclasses import asdict, fields
from typing import Any

from tlstudio.core.training import events as ev

KINDS: dict[str, type] = {kind.__name__: kind for kind in (
    ev.RunStarted, ev.ModelReady, ev.Progress, ev.PhaseStarted, ev.BatchEnd, ev.EpochEnd, ev.CheckpointSaved,
    ev.Problem, ev.Finished, ev.Failed)}
PREFIX = "tlstudio-event "  # lines start with it: told apart from anything else a process prints


def to_line(event: Any) -> str:
    return PREFIX + json.dumps({"event": type(event).__name__, **asdict(event)}, default=str, allow_nan=True)


def from_line(line: str) -> Any | None:
    """The event a line carries, or None for any other line."""
    if not line.startswith(PREFIX):
        return None
    try:
        data = json.loads(line[len(PREFIX):])
        kind = KINDS[data.pop("event")]
        known = {f.name for f in fields(kind)}
        return kind(**{key: value for key, value in data.items() if key in known})
    except (ValueError, KeyError, TypeError):
        return None


def printer(write=print) -> ev.Listener:
    """A listener that prints each event as one line (flushed: the reader follows it live). A reader that
    went away (the window closed) must not stop the run: it goes on, saving, and says nothing more."""
    gone = False

    def emit(event: Any) -> None:
        nonlocal gone
        if gone:
            return
        try:
            write(to_line(event), flush=True)
        except (OSError, ValueError):  # a broken pipe, or stdout closed
            gone = True
    return emit
