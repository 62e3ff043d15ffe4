"""What several commands share: exit codes, Ctrl-C/SIGTERM handling, and the scan with the data's defaults."""

from __future__ import annotations

import argparse
import signal
from collections.abc import Callable
from typing import Any

from tlstudio.cli.parser import config_from_args

EXIT_OK, EXIT_INTERNAL, EXIT_CANCELLED, EXIT_TERMINATED, EXIT_BROKEN_PIPE = 0, 1, 130, 143, 141


def run_with_ctrl_c(work: Callable[[Any], dict], control: Any = None) -> dict:
    """Ctrl-C (or SIGTERM, as a service manager sends) stops the engine after the current batch, which
    saves; a second Ctrl-C aborts. DataLoader workers ignore SIGINT: the main process decides. `control`: the
    run's own (a run handle's), else a new one."""
    from tlstudio.core.control import Control, stop_on_signals

    control = control or Control()
    with stop_on_signals(control, lambda: print("\nStopping after this batch and saving (Ctrl-C again to abort)...",
                                                flush=True)) as received:
        result = work(control)
    if received and result.get("status") == "cancelled":
        result["exit_code"] = EXIT_TERMINATED if received[0] == signal.SIGTERM else EXIT_CANCELLED
    return result


def cancellable(compute: Callable[[Any], Any]) -> tuple[Any, int | None]:
    """`compute(control)` with Ctrl-C handling: (its result, None), or (None, the exit code) when stopped."""
    from tlstudio.core.control import Cancelled

    def work(control) -> dict:
        try:
            return {"value": compute(control)}
        except Cancelled:
            return {"status": "cancelled"}

    result = run_with_ctrl_c(work)
    if "value" not in result:
        return None, int(result.get("exit_code", EXIT_CANCELLED))
    return result["value"], None


def scanned_with_defaults(args: argparse.Namespace) -> tuple[Any, Any]:
    """(config, spec) of a command that takes DATA and the train flags: the scan, then the data's defaults."""
    from tlstudio.core.data import scan as data
    from tlstudio.core.training.config import with_data_defaults

    config, given = config_from_args(args)
    spec = data.scan(args.data, val_split=config.val_split, seed=config.seed, check_file="auto",
                     group_by=config.group_by, task=config.task)
    return with_data_defaults(config, spec.modality, given, spec.clip_seconds), spec
