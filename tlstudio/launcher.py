"""Opens the studio window; kept apart so the command line never imports Qt."""

from __future__ import annotations

import sys


def launch_gui() -> int:
    try:
        from tlstudio.gui.app import run  # type: ignore[import-not-found]
    except ModuleNotFoundError as exc:
        if exc.name and exc.name.startswith("tlstudio.gui"):
            print(
                "The studio window is not part of this version yet.\n"
                "Use the command line: `tlstudio train FOLDER` (see `tlstudio --help`).",
                file=sys.stderr,
            )
            return 2
        raise
    return run()
