"""Steps the GUI tests take as a user would: open a folder, pick a backbone, train."""

from __future__ import annotations

from pathlib import Path


def open_folder(window, qtbot, folder: Path) -> None:
    """Open a data folder and wait until the scan and the Model page's catalogue and blocks are ready."""
    window.data_page.open_folder(folder)
    qtbot.waitUntil(lambda: window.state.spec is not None, timeout=30000)
    qtbot.waitUntil(lambda: bool(window.model_page.rows) and hasattr(window.model_page, "_current_blocks"),
                    timeout=60000)


def pick_backbone(window, name: str) -> None:
    names = [row["name"] for row in window.model_page.rows]
    window.model_page.table.selectRow(names.index(name))


def train(window, qtbot, folder: Path, depth: int = 0, epochs: int = 2) -> None:
    """mobilenet_v2 on `folder`, `depth` blocks unfrozen, trained to the end."""
    open_folder(window, qtbot, folder)
    pick_backbone(window, "mobilenet_v2")
    window.model_page.depth.setValue(depth)
    window.model_page.epochs.setValue(epochs)
    with qtbot.waitSignal(window.train_page.finished, timeout=300000):
        window.start_training()


def set_up_tiny(window, qtbot, folder: Path | None = None, depth: int = 0, epochs: int = 1,
                backbone: str = "mobilenet_v3_small") -> None:
    """A tiny real run's settings (random weights, no download): `backbone` from scratch on `folder`."""
    if folder is not None:
        open_folder(window, qtbot, folder)
    window.state.config.pretrained = "none"
    pick_backbone(window, backbone)
    qtbot.waitUntil(lambda: getattr(window.model_page, "_current_key", ("",))[0] == backbone, timeout=60000)
    window.model_page.depth.setValue(depth)
    window.model_page.epochs.setValue(epochs)


def train_tiny(window, qtbot, folder: Path | None = None, depth: int = 0, epochs: int = 1,
               backbone: str = "mobilenet_v3_small") -> dict:
    """A tiny real run (set_up_tiny), trained to the end; its metrics."""
    set_up_tiny(window, qtbot, folder, depth, epochs, backbone)
    with qtbot.waitSignal(window.train_page.finished, timeout=300000) as done:
        window.start_training()
    qtbot.waitUntil(lambda: not window.train_page.is_running(), timeout=30000)
    return done.args[0]


def _real_ask_scratch_budget():
    from tlstudio.gui.main_window import MainWindow

    return MainWindow._ask_scratch_budget


REAL_ASK_SCRATCH_BUDGET = _real_ask_scratch_budget()  # taken at import, before conftest answers it for every test
