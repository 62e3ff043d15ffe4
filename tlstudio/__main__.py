"""`python -m tlstudio` and the `tlstudio` command: the window with no arguments, else the command line."""

from __future__ import annotations

import multiprocessing
import sys


def main() -> int:
    multiprocessing.freeze_support()  # frozen installers re-enter here in DataLoader workers
    from tlstudio.cli import main as cli_main

    return cli_main(sys.argv[1:])


if __name__ == "__main__":
    sys.exit(main())
