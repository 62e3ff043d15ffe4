"""`recommend`, `map` and `explain`: looking into data and runs rather than training."""

from __future__ import annotations

import argparse

from tlstudio.cli.common import EXIT_OK, cancellable, scanned_with_defaults
from tlstudio.cli.printer import ConsolePrinter
from tlstudio.core.errors import ConfigError, DataError, StorageError


def recommend_command(args: argparse.Namespace) -> int:
    from tlstudio.core.training.events import Progress
    from tlstudio.core.training.recommend import recommend

    config, spec = scanned_with_defaults(args)
    print(f"Probing {config.backbone} on a subset of {args.data}: a linear probe against a short fine-tune ...",
          flush=True)
    printer = ConsolePrinter(quiet=False)
    advice, stopped = cancellable(lambda control: recommend(
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


def map_command(args: argparse.Namespace) -> int:
    from tlstudio.core.store.runs import RunDir
    from tlstudio.core.training import embedding_map
    from tlstudio.core.training.events import Progress

    if not 5 <= args.max_files <= 100_000:
        raise ConfigError(f"--max-files must be between 5 and 100000, not {args.max_files}.")
    run = RunDir.open(args.run)
    printer = ConsolePrinter(quiet=False)
    found, stopped = cancellable(lambda control: embedding_map.build_map(
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


def explain_command(args: argparse.Namespace) -> int:
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
