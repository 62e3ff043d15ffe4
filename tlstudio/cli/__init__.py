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
import sys
import time
from collections.abc import Callable, Sequence

from tlstudio import __version__
from tlstudio.cli import analysis, backbones, evaluate, export, predict, train
from tlstudio.cli.common import EXIT_BROKEN_PIPE, EXIT_CANCELLED, EXIT_INTERNAL, EXIT_OK
from tlstudio.cli.parser import build_parser
from tlstudio.cli.printer import ConsolePrinter, calibration_line, regression_lines
from tlstudio.core.errors import StudioError

__all__ = ["EXIT_OK", "ConsolePrinter", "build_parser", "calibration_line", "main", "regression_lines"]

COMMANDS: dict[str, Callable[[argparse.Namespace], int]] = {
    "train": train.train_command, "lr-find": train.lr_find_command, "backbones": backbones.backbones_command,
    "weights": backbones.weights_command, "cache": backbones.cache_command,
    "evaluate": evaluate.evaluate_command, "predict": predict.predict_command, "export": export.export_command,
    "explain": analysis.explain_command, "map": analysis.map_command, "recommend": analysis.recommend_command,
}


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command (or open the window when none is given); returns the exit code."""
    for stream in (sys.stdout, sys.stderr):  # file names that are not valid UTF-8 print as escapes
        with contextlib.suppress(AttributeError, ValueError):
            stream.reconfigure(errors="backslashreplace")
    parser = build_parser()
    argv = list(sys.argv[1:] if argv is None else argv)
    args = parser.parse_args(argv)
    args.argv = argv  # `train --devices N` starts the same command on N processes
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s")
    if args.command is None:
        from tlstudio.launcher import launch_gui

        return launch_gui()
    try:
        code = COMMANDS[args.command](args)
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
