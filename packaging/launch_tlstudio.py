"""The installers' entry script (PyInstaller runs this as __main__): the same `main` as the `tlstudio` command."""

import sys

from tlstudio.__main__ import main

if __name__ == "__main__":
    sys.exit(main())
