"""`export`: a run's model with its preprocessing, model.json and a standalone predict.py."""

from __future__ import annotations

import argparse

from tlstudio.cli.common import EXIT_OK


def export_command(args: argparse.Namespace) -> int:
    from tlstudio.core.inference.export import export_run
    from tlstudio.core.store.runs import RunDir

    path = export_run(RunDir.open(args.run), args.format, args.out)
    print(f"Exported {args.format} to {path}")
    print(f"  {path.parent / 'model.json'}: class names, input contract (preprocessing included), metrics")
    print(f"  {path.parent / 'predict.py'}: python predict.py FILE ... runs it without the studio")
    return EXIT_OK
