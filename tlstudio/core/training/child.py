"""The entry point of a run on processes of its own, started by the window through processes.py.

Its argument contract is this module's, not the command line's:

    python -m tlstudio.core.training.child --out RUN (--plan PLAN | --resume) [--devices N]

With --devices N (outside a launch) it starts N copies of itself through torch.distributed.run; inside a
launch (torchrun's variables set) each copy trains its share, and rank 0 prints the engine's events as JSON
lines (event_stream.py), a failure as a `Failed` event. Ctrl-C (the window's Stop) stops every rank at the
same step; they save, and the run is cancelled, not failed. A frozen app reaches it as `APP --run-child ...`.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
from collections.abc import Sequence
from pathlib import Path

MODULE = "tlstudio.core.training.child"  # not __name__: run with -m, that is "__main__"
FLAG = "--run-child"  # how the frozen app (no `-m`) is told to run this module
EXIT_FAILED, EXIT_CANCELLED, EXIT_TERMINATED = 1, 130, 143


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="tlstudio-child", description="a run on processes of its own")
    p.add_argument("--out", required=True, help="the run folder (made by rank 0; a resumed run's folder)")
    what = p.add_mutually_exclusive_group(required=True)
    what.add_argument("--plan", help="JSON: {'dataset': DatasetSpec, 'config': TrainConfig}")
    what.add_argument("--resume", action="store_true", help="continue the run in --out")
    p.add_argument("--devices", type=int, default=1, help="processes to start (outside a launch)")
    return p


def arguments(out: Path, plan: Path | None, devices: int) -> list[str]:
    """The arguments of a child for a new run (`plan`) or a resumed one (no plan)."""
    what = ["--plan", str(plan)] if plan is not None else ["--resume"]
    return ["--out", str(out), *what, "--devices", str(devices)]


def command(args: Sequence[str]) -> list[str]:
    """How to start a child from here: the frozen app itself, or this interpreter."""
    if getattr(sys, "frozen", False):
        return [sys.executable, FLAG, *args]
    return [sys.executable, "-m", MODULE, *args]


def read_plan(path: str):
    """(the data set, the settings) a window wrote for processes of their own to train."""
    from tlstudio.core.data.spec import DatasetSpec
    from tlstudio.core.errors import ConfigError
    from tlstudio.core.training.config import TrainConfig

    try:
        plan = json.loads(Path(path).read_text(encoding="utf-8", errors="surrogateescape"))
        return DatasetSpec.from_dict(plan["dataset"]), TrainConfig.from_dict(plan["config"])
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ConfigError(f"The training plan {path} cannot be read ({exc}).", "Start the run again.") from exc


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    from tlstudio.core.control import Control, stop_on_signals
    from tlstudio.core.errors import StudioError
    from tlstudio.core.store.runs import RunDir
    from tlstudio.core.training import distributed, engine, event_stream
    from tlstudio.core.training.events import Failed

    world = distributed.from_environment()
    emit = event_stream.printer() if world.is_main else (lambda _event: None)
    try:
        if not world.active and args.devices > 1:
            rank_args = arguments(Path(args.out), None if args.resume else Path(args.plan), 1)
            entry = ["--no-python", sys.executable, FLAG] if getattr(sys, "frozen", False) else \
                ["--module", MODULE]
            distributed.launch_device(_wanted_device(args), args.devices)
            return distributed.launch(rank_args, args.devices, entry=entry)
        if not world.is_main:  # rank 0 speaks for all; the others still say their errors on stderr
            sys.stdout = open(os.devnull, "w", encoding="utf-8")  # noqa: SIM115 (for the life of the process)
        control = Control()
        out = Path(args.out).expanduser().resolve()
        with stop_on_signals(control) as received:  # the window's Stop arrives as Ctrl-C through the launcher
            if args.resume:  # a rank is one process of the launch: it trains here (the run service sent it)
                metrics = engine.resume(RunDir.open(out), emit, control, world)
            else:
                spec, config = read_plan(args.plan)
                folder = RunDir.create(out, config.backbone) if world.is_main else RunDir(out)
                metrics = engine.train(spec, config, folder, emit, control, world)
        if metrics.get("status") == "cancelled" and received and received[0] == signal.SIGTERM:
            return EXIT_TERMINATED
        return EXIT_CANCELLED if metrics.get("status") == "cancelled" else 0
    except StudioError as exc:
        emit(Failed(exc.message, exc.hint))
        print(f"error: {exc.message}", file=sys.stderr)
        return int(getattr(exc, "exit_code", EXIT_FAILED) or EXIT_FAILED)
    except KeyboardInterrupt:
        return EXIT_CANCELLED
    except Exception as exc:  # a bug: the window reads one line of it, the log gets the traceback
        import traceback

        traceback.print_exc()
        emit(Failed(f"Unexpected error: {type(exc).__name__}: {exc}", "The processes' own words are in the log."))
        print(f"error: an internal error ({type(exc).__name__}: {exc})", file=sys.stderr)
        return EXIT_FAILED


def _wanted_device(args: argparse.Namespace) -> str:
    """The device the run asks for: its plan's, or (resumed) the one it began on."""
    try:
        source = Path(args.plan) if args.plan else Path(args.out) / "config.json"
        data = json.loads(source.read_text(encoding="utf-8"))
        return str((data["config"] if args.plan else data).get("device", "auto"))
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return "auto"


if __name__ == "__main__":
    sys.exit(main())
