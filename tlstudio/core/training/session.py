"""The run service: the one way a run starts, for the window and the command line alike.

It names the run folder, and chooses how the run goes: in this process (engine.train / engine.resume), or
on processes of its own when the run trains on several devices (processes.py). Front-ends describe the run
(`RunRequest`), get a `RunHandle` (its folder and its `control`: cancel, pause), and call `handle.run(listener)`
in the thread that should do the work; the listener gets the engine's events (events.py) either way.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tlstudio.core.control import Control
from tlstudio.core.data.spec import DatasetSpec
from tlstudio.core.errors import ConfigError
from tlstudio.core.store.runs import RunDir
from tlstudio.core.training.config import TrainConfig
from tlstudio.core.training.events import Listener

# No torch here: the window makes a request and a handle on its GUI thread; torch loads in the worker's thread.


@dataclass(frozen=True)
class RunRequest:
    """A new run (`spec` and `config`; `folder` or a fresh one under the studio's runs), or `resume` a run."""

    spec: DatasetSpec | None = None
    config: TrainConfig | None = None
    folder: Path | None = None
    resume: Path | None = None
    world: Any = None  # distributed.World: this process's place in a launch (torchrun); None: one process
    callbacks: tuple[Any, ...] = field(default_factory=tuple)  # extra loop callbacks (callbacks.Callback)


class RunHandle:
    def __init__(self, request: RunRequest, path: Path, on_processes: bool) -> None:
        self.request, self.path, self.on_processes = request, path, on_processes
        self.control = Control()

    def run(self, on_event: Listener) -> dict[str, Any]:
        """Do the run in this thread; its final metrics (status "cancelled" when stopped), as engine.train."""
        from tlstudio.core.training import engine

        request = self.request
        if self.on_processes:
            from tlstudio.core.training.processes import train_in_processes

            return train_in_processes(None if request.resume else request.spec, request.config, self.path,
                                      on_event, self.control)
        from tlstudio.core.training import distributed

        world = request.world or distributed.SINGLE
        if request.resume is not None:
            return engine.resume(RunDir.open(self.path), on_event, self.control, world, request.callbacks)
        assert request.spec is not None and request.config is not None
        folder = RunDir.create(self.path, request.config.backbone) if world.is_main else RunDir(self.path)
        return engine.train(request.spec, request.config, folder, on_event, self.control, world, request.callbacks)


def new_run_path(backbone: str) -> Path:
    """A fresh run folder's path under the studio's runs (made when the run starts)."""
    return RunDir.new_path(backbone)


def began_on_processes(run: Path) -> bool:
    """A run that trained on several processes resumes on as many."""
    from tlstudio.core.training.processes import recorded_devices

    return recorded_devices(run) > 1


def start(request: RunRequest) -> RunHandle:
    """Name the folder and choose where the run trains; nothing runs until `handle.run()`."""
    if request.resume is not None:
        path = Path(request.resume).expanduser().resolve()
        return RunHandle(request, path, not _launched(request) and began_on_processes(path))
    if request.spec is None or request.config is None:
        raise ConfigError("A new run needs its data and its settings.")
    path = Path(request.folder).expanduser().resolve() if request.folder else new_run_path(request.config.backbone)
    handle = RunHandle(request, path, not _launched(request) and request.config.devices > 1)
    if handle.on_processes and request.callbacks:
        raise ConfigError("Extra callbacks run in this process; a run on several devices trains in processes of "
                          "its own.", "Use --devices 1 to add callbacks.")
    return handle


def _launched(request: RunRequest) -> bool:
    """This process is one of a launch's (the processes are already there)."""
    return request.world is not None and request.world.active
