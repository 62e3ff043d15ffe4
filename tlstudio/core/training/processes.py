"""A run on several devices, started and followed from one that is not part of it (the window).

DistributedDataParallel needs a process per device, so the window cannot train such a run in its own
worker thread. It writes a plan (the data set exactly as shown, less the files left out, and the
settings), starts the core's own entry point for such runs (child.py: `--out RUN --plan PLAN --devices N`,
which starts the N ranks through torch.distributed.run), and relays the events rank 0 prints as JSON lines
(event_stream.py): the window draws the same curves as for a run in its own process. Stop is Ctrl-C to the
launcher, which forwards it to every rank (they stop at the same step and save); pausing is not offered.
"""

from __future__ import annotations

import contextlib
import signal
import subprocess
import sys
import threading
from collections import deque
from pathlib import Path
from typing import Any

from tlstudio.core.control import Control
from tlstudio.core.data.spec import DatasetSpec
from tlstudio.core.errors import StudioError
from tlstudio.core.store import atomic
from tlstudio.core.store.paths import runs_home
from tlstudio.core.training import child, event_stream
from tlstudio.core.training import events as ev
from tlstudio.core.training.config import TrainConfig

STOP_POLL_SECONDS = 0.2


def train_in_processes(spec: DatasetSpec | None, config: TrainConfig, run_dir: Path, on_event: ev.Listener,
                       control: Control) -> dict[str, Any]:
    """Train `config.devices` processes together; returns the final metrics (status "cancelled" when
    stopped), as engine.train does. No `spec`: resume the run in `run_dir` (on the processes it began with)."""
    plan = runs_home() / ".plans" / f"{Path(run_dir).name}.json"
    if spec is None:
        command = child.command(child.arguments(Path(run_dir), None, recorded_devices(run_dir)))
    else:
        atomic.write_json(plan, {"dataset": spec.to_dict(), "config": config.to_dict()})
        command = child.command(child.arguments(Path(run_dir), plan, config.devices))
    windows = sys.platform == "win32"
    try:
        process = subprocess.Popen(  # its own process group: Ctrl-C goes to it alone, never to the window
            command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, encoding="utf-8",
            errors="replace", start_new_session=not windows,
            creationflags=subprocess.CREATE_NEW_PROCESS_GROUP if windows else 0,  # type: ignore[attr-defined]
        )
    except OSError as exc:
        plan.unlink(missing_ok=True)
        raise StudioError(f"The training processes could not be started ({exc}).") from exc
    said = deque(maxlen=20)  # the end of stderr: what a failure said
    readers = [threading.Thread(target=_keep_tail, args=(process.stderr, said), daemon=True),
               threading.Thread(target=_stop_when_asked, args=(process, control), daemon=True)]
    for reader in readers:
        reader.start()
    finished: ev.Finished | None = None
    failed: ev.Failed | None = None
    try:
        assert process.stdout is not None
        for line in process.stdout:
            event = event_stream.from_line(line.rstrip("\n"))
            if event is None:
                continue
            if isinstance(event, ev.Finished):
                finished = event
            if isinstance(event, ev.Failed):
                failed = event
            on_event(event)
        code = process.wait()
    finally:
        if process.poll() is None:  # the caller is going away: the ranks stop and save
            _interrupt(process)
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(60)
        plan.unlink(missing_ok=True)
    readers[0].join(5)
    if finished is not None:  # as engine.train returns them (a stop before any epoch sends no metrics)
        return {"status": finished.status, **finished.metrics}
    if control.cancelled and code == 130:  # stopped before the run had begun (the scan, the weights)
        return {"status": "cancelled", "run_dir": str(run_dir)}
    if failed is not None:
        raise StudioError(failed.message, failed.hint)
    words = [line.strip() for line in said if line.strip()]
    message = next((line.split("error:", 1)[1].strip() for line in reversed(words) if "error:" in line),
                   words[-1] if words else f"The training processes stopped (exit code {code}).")
    raise StudioError(message, "The processes' own words are in the log." if words else "")


def recorded_devices(run_dir: Path) -> int:
    """How many processes a run began on (its config.json's devices; 1 when unreadable)."""
    import json

    try:
        return int(json.loads((Path(run_dir) / "config.json").read_text(encoding="utf-8")).get("devices", 1))
    except (OSError, ValueError, TypeError, AttributeError):
        return 1


def _keep_tail(stream, tail: deque) -> None:
    for line in stream:
        tail.append(line)


def _stop_when_asked(process: subprocess.Popen, control: Control) -> None:
    while process.poll() is None:
        if control.cancelled:
            _interrupt(process)
            return
        threading.Event().wait(STOP_POLL_SECONDS)


def _interrupt(process: subprocess.Popen) -> None:
    """Ctrl-C to the launcher alone: its agent forwards it to each rank once (they finish the step, agree,
    save and leave); sent to the whole group, each rank would get a second one, which aborts."""
    with contextlib.suppress(OSError):
        if sys.platform == "win32":  # untested here: Windows has no SIGINT for another process group
            process.send_signal(signal.CTRL_BREAK_EVENT)  # type: ignore[attr-defined]
        else:
            process.send_signal(signal.SIGINT)
