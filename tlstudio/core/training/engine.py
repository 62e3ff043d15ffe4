"""The one entry to training for the GUI, the CLI and the tests: `train()` and `resume()` (Lightning's `fit`).

A run is three parts (docs/architecture.md draws them):
- set-up (resolved.py): checks the settings and resolves device, model, pipeline, phases and processes once;
- the loop (loop.py): phases of epochs of batches from one of two batch sources (sources.py: cached
  embeddings or files), calling an ordered list of callbacks (callbacks.py) at fixed hooks: history,
  checkpoints, best weights, the forgetting meter and the events are callbacks;
- the finisher (finish.py): scores the best weights, calibrates, and writes model.pt and metrics.json.

Listeners write the best weights, the checkpoint and the history at every epoch end, so a crash or a kill
loses at most the current epoch, and `resume()` continues a run exactly as if it had never stopped.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from tlstudio.core.control import Control
from tlstudio.core.data.spec import DatasetSpec, changed_files, read_spec
from tlstudio.core.errors import DataError, DivergedError, RunError, StorageError
from tlstudio.core.models import freezing
from tlstudio.core.store.runs import RunDir
from tlstudio.core.training import callbacks as cb
from tlstudio.core.training import checkpoints, distributed
from tlstudio.core.training.config import TrainConfig
from tlstudio.core.training.events import Finished, Listener, ModelReady, RunStarted
from tlstudio.core.training.finish import Finisher
from tlstudio.core.training.loop import Loop
from tlstudio.core.training.memory import is_out_of_memory
from tlstudio.core.training.resolved import ResolvedRun, autocast_dtype, resolve, write_header
from tlstudio.core.training.skipped import SkippedLog
from tlstudio.core.training.together import merge_shares

__all__ = ["Trainer", "autocast_dtype", "is_out_of_memory", "merge_shares", "resume", "train"]

log = logging.getLogger(__name__)
HEADER_FILES = ("config.json", "labels.json", "dataset.json", "skipped.tsv", checkpoints.BEST_FILE)


class Trainer:
    """One run. `prepare()` resolves it and gives the loop (for tools that train their own way, such as the
    learning-rate finder); `run()` does the whole run and returns its metrics.

    `callbacks` are added after the standard ones (files, then events), in their order."""

    def __init__(self, spec: DatasetSpec, config: TrainConfig, run: RunDir, emit: Listener,
                 control: Control | None = None, checkpoint: dict[str, Any] | None = None,
                 world: distributed.World = distributed.SINGLE, callbacks: Sequence[cb.Callback] = ()) -> None:
        self.spec, self.config, self.folder, self.emit = spec, config, run, emit
        self.control = control or Control()
        self.checkpoint, self.world, self.extra = checkpoint, world, list(callbacks)

    def prepare(self) -> Loop:
        """Resolve the run (nothing written yet) and make its loop."""
        recorded = None
        if self.checkpoint is not None:  # resuming: the backbone must be the one the saved epochs learnt on
            recorded = (self.folder.read_json("config.json").get("resolved") or {}).get("weights")
        resolved = resolve(self.spec, self.config, self.world, self.emit, recorded)
        together = resolved.together
        callbacks = cb.Callbacks([*cb.standard(self.folder, self.emit, together.is_main,
                                               resolved.continuation is not None), *self.extra])
        skipped = SkippedLog(resolved.spec, self.folder, self.emit, together.is_main)
        return Loop(resolved, self.folder, callbacks, self.control, self.emit, skipped, self.checkpoint)

    def run(self) -> dict[str, Any]:
        loop = self.prepare()
        if self.checkpoint is None and loop.run.together.is_main:
            write_header(loop.run, self.folder)
            loop.skipped.write()
        self._announce(loop.run)  # nothing here holds the resolved run: a restart's new model replaces it
        try:
            status = loop.fit()
        except DivergedError:
            if loop.state.history:
                Finisher(loop).finish("diverged", loop.seconds)
            loop.run.together.barrier()
            raise
        if status == "cancelled" and loop.state.epochs_this_session == 0:
            # nothing new to save: the files on disk stay as they are
            self.emit(Finished("cancelled", str(self.folder.path), {}))
            return {"status": "cancelled"}
        metrics = Finisher(loop).finish(status, loop.seconds)
        loop.run.together.barrier()  # together: rank 0 writes model.pt and metrics.json before anyone leaves
        self.emit(Finished(status, str(self.folder.path), metrics))
        return metrics

    def _announce(self, resolved: ResolvedRun) -> None:
        plan = freezing.plan(resolved.model, resolved.unfreeze)
        self.emit(RunStarted(str(self.folder.path), self.config.to_dict(), resolved.spec.sizes(),
                             resolved.spec.classes, resolved.spec.modality))
        self.emit(ModelReady(resolved.entry.name, str(resolved.device), plan.trainable_blocks, plan.frozen_blocks,
                             plan.trainable_params, plan.total_params, resolved.fast_path))


def train(spec: DatasetSpec, config: TrainConfig, run: RunDir, on_event: Listener,
          control: Control | None = None, world: distributed.World = distributed.SINGLE,
          callbacks: Sequence[cb.Callback] = ()) -> dict[str, Any]:
    """Train per `config` on `spec`, writing `run`; returns the final metrics.

    A run that fails before its first epoch leaves nothing behind (no half-made folder to trip over);
    the folder's lock is released however it ends. Launched on many processes (`world`), every process
    calls this; rank 0 holds the lock and writes."""
    try:
        if world.is_main:
            run.acquire_lock()
        return Trainer(spec, config, run, on_event, control, world=world, callbacks=callbacks).run()
    except BaseException as exc:
        if world.is_main and not run.file("checkpoint.pt").exists():  # not one epoch saved: nothing to keep
            run.discard(HEADER_FILES)
            if isinstance(exc, StorageError):
                exc.hint = "Free some space or choose a writable folder, then start the run again."
        raise
    finally:
        if world.is_main:
            run.release_lock()
        distributed.leave()


def resume(run: RunDir, on_event: Listener, control: Control | None = None,
           world: distributed.World = distributed.SINGLE, callbacks: Sequence[cb.Callback] = ()) -> dict[str, Any]:
    """Continue a cancelled, crashed or killed run from its last completed epoch, in the same folder."""
    if world.is_main:
        run.acquire_lock()
    try:
        settings = run.read_json("config.json")
        config = TrainConfig.from_dict(settings)
        spec = read_spec(run)
        recorded = int((settings.get("resolved") or {}).get("world_size", 1))
        if recorded != world.size:  # the batches per process, the shares and the schedule depend on it
            raise RunError(f"The run {run.path.name} trained on {recorded} process(es); this resume has "
                           f"{world.size}.", f"Resume it as it began: on {recorded} process(es) "
                           "(tlstudio train --resume RUN does so by itself).")
        checkpoint = checkpoints.load_checkpoint(run)
        if checkpoint is not None and checkpoint["epoch"] >= config.epochs:
            metrics_file = run.file("metrics.json")
            if metrics_file.is_file() and run.read_json("metrics.json").get("status") == "completed":
                raise RunError(f"The run {run.path.name} already finished all {config.epochs} epochs.",
                               "Start a new run to train more.")
        if not Path(spec.root).is_dir():
            raise DataError(f"The run's data folder {spec.root} is no longer there.",
                            "Put the folder back where it was to resume this run.")
        changed = changed_files(run.read_json("dataset.json"))
        if changed:
            raise DataError(
                f"{len(changed)} file(s) of this run changed or vanished since it started, e.g. {changed[0]}; "
                "resuming would not repeat the run.",
                "Put the files back as they were, or start a new run on the folder as it is now.")
        return Trainer(spec, config, run, on_event, control, checkpoint=checkpoint, world=world,
                       callbacks=callbacks).run()
    finally:
        if world.is_main:
            run.release_lock()
        distributed.leave()
