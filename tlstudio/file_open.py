"""`tlstudio PROJECT.tlsproj`: what a double-click on a project file runs (the installers' file association).

Opens the studio window with that project instead of the demo data. Kept apart from the command line (which
never imports Qt) and from `tlstudio.gui` (the window's own code), through the window's public API only.
"""

from __future__ import annotations

import sys
from pathlib import Path


def is_project_argument(argv: list[str]) -> bool:
    return len(argv) == 1 and argv[0].lower().endswith(".tlsproj") and not argv[0].startswith("-")


def open_project_window(path: Path) -> int:
    from tlstudio.gui.app import create_window

    app, window = create_window()
    window.show()
    if path.is_file():
        window.open_project(path.resolve())
    else:
        window.statusBar().showMessage(f"The project {path} does not exist (moved or deleted?).")
    return app.exec()


def main(argv: list[str]) -> int:
    return open_project_window(Path(argv[0]).expanduser())


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
