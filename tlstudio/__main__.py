"""`python -m tlstudio` and the `tlstudio` command: the window with no arguments, else the command line.

`--self-test` (used by the installers' build and CI, and by a person checking an install) is intercepted here,
before the command line, so it works the same from a checkout and inside a frozen bundle.
"""

from __future__ import annotations

import multiprocessing
import sys


def main() -> int:
    multiprocessing.freeze_support()  # frozen installers re-enter here in DataLoader workers
    argv = sys.argv[1:]
    from tlstudio import frozen

    frozen.prepare(argv)  # a no-op unless frozen: bundled weights, missing display libraries
    if argv[:1] == ["--self-test"]:
        from tlstudio.selftest import main as self_test

        return self_test(argv[1:])
    if argv[:1] == ["--run-child"]:  # a run on processes of its own, started by the window (frozen: no `-m`)
        from tlstudio.core.training.child import main as run_child

        return run_child(argv[1:])
    from tlstudio.file_open import is_project_argument

    if is_project_argument(argv):  # a double-clicked .tlsproj (file association of the installers)
        from tlstudio.file_open import main as open_project

        return open_project(argv)
    from tlstudio.cli import main as cli_main

    return cli_main(argv)


if __name__ == "__main__":
    sys.exit(main())
