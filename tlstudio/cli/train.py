"""`train` (new, resumed, continued, launched on several processes, or a window's plan) and `lr-find`."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from tlstudio.cli.common import EXIT_CANCELLED, EXIT_OK, cancellable, run_with_ctrl_c, scanned_with_defaults
from tlstudio.cli.parser import build_parser, config_from_args
from tlstudio.cli.printer import ConsolePrinter
from tlstudio.core.errors import ConfigError, StorageError


def train_command(args: argparse.Namespace) -> int:
    from tlstudio.core.store.runs import RunDir
    from tlstudio.core.training import distributed, session
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
    listener = fan_out(printer)
    if args.resume:
        _refuse_flags_with_resume(args)
        run = RunDir.open(args.resume)
        print(f"Resuming {run.path} ...", flush=True)
        handle = session.start(session.RunRequest(resume=run.path, world=world))
    else:
        if args.plan:  # a plan file: its files and settings exactly, nothing rescanned or defaulted
            from tlstudio.core.training.child import read_plan

            spec, config = read_plan(args.plan)
        else:
            spec, config = _scanned_for_training(args)
        handle = session.start(session.RunRequest(spec, config, Path(args.out) if args.out else None, world=world))
        run = RunDir(handle.path)
    metrics = run_with_ctrl_c(lambda control: handle.run(listener), handle.control)
    return _cancelled(metrics, run) if metrics.get("status") == "cancelled" else EXIT_OK


def _scanned_for_training(args: argparse.Namespace) -> tuple[Any, Any]:
    """(the data set, the settings) from DATA and the flags, with what the scan found said on the way."""
    from tlstudio.core.data import scan as data
    from tlstudio.core.models.registry import default_backbone
    from tlstudio.core.training.config import with_data_defaults

    if not args.data:
        raise ConfigError("Give the DATA folder to train on (or --resume RUN).")
    config, given = config_from_args(args)
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


def _launch_device(wanted: str, devices: int) -> str:
    from tlstudio.core.training import distributed

    return distributed.launch_device(wanted, devices)


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


def _cancelled(metrics: dict, run: Any) -> int:
    if metrics.get("epochs"):
        print(f"Continue later with: tlstudio train --resume {run.path}")
    else:
        print(f"Stopped before an epoch finished; nothing new was trained. Resume with: "
              f"tlstudio train --resume {run.path}")
    return int(metrics.get("exit_code", EXIT_CANCELLED))


def lr_find_command(args: argparse.Namespace) -> int:
    from tlstudio.core.training.events import Progress
    from tlstudio.core.training.lr_finder import find_learning_rate

    if not 10 <= args.steps <= 10_000:
        raise ConfigError(f"--steps must be between 10 and 10000, not {args.steps}.")
    config, spec = scanned_with_defaults(args)
    print(f"Range test: {config.backbone}, unfreeze {config.unfreeze}, {args.steps} batches of {config.batch_size}")
    printer = ConsolePrinter(quiet=False)
    test, stopped = cancellable(lambda control: find_learning_rate(
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
