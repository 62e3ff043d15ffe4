"""`predict`: labels (or values) for files and folders, printed or streamed to a CSV as they come."""

from __future__ import annotations

import argparse
from pathlib import Path

from tlstudio.cli.common import EXIT_OK
from tlstudio.core.errors import ConfigError, StorageError


def predict_command(args: argparse.Namespace) -> int:
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
