"""The studio window's entry point. Torch is not imported here: the window opens first, fast."""

from __future__ import annotations

import logging
import sys
import traceback

log = logging.getLogger(__name__)


GREETING_MS = 20000  # a greeting is news for a moment, not a state: it leaves the status bar by itself


def _excepthook(kind, value, tb) -> None:
    """One error funnel: an unexpected error is logged and shown, and the window keeps running."""
    log.error("unexpected error:\n%s", "".join(traceback.format_exception(kind, value, tb)))
    from PySide6.QtWidgets import QApplication, QMessageBox

    app = QApplication.instance()
    if app is not None:
        QMessageBox.critical(None, "Transfer Learning Studio", f"Unexpected error: {kind.__name__}: {value}")


def create_window():
    from PySide6.QtWidgets import QApplication

    from tlstudio.gui.main_window import MainWindow
    from tlstudio.gui.settings import settings
    from tlstudio.gui.style import apply_style

    app = QApplication.instance() or QApplication(sys.argv[:1])
    from tlstudio.gui.widgets.audio_view import load_multimedia

    load_multimedia()  # now, before any background thread exists (see there)
    apply_style(app, settings().value("view/dark", False, type=bool))
    from tlstudio.gui.tasks import Task

    Task.hold_torch_work()  # until the window has shown itself (MainWindow.showEvent)
    return app, MainWindow()


def start_up(window) -> None:
    """What a launch opens: the last project (shown at once from memory), or on a first visit the demo data."""
    if window.reopen_last():
        window.statusBar().showMessage("Reopened your last project (File > Reopen the last project at launch).",
                                       GREETING_MS)
    elif window.state.spec is None and not window.recent_folders():
        from tlstudio.gui.pages.data_page import demo_folder

        window.statusBar().showMessage("First visit: the demo data is loaded so you can train right away.",
                                       GREETING_MS)
        window.data_page.open_folder(demo_folder())


def run() -> int:
    sys.excepthook = _excepthook
    app, window = create_window()
    window.closed_for_good.connect(app.quit)
    window.show()
    start_up(window)
    code = app.exec()
    from tlstudio.gui.tasks import Task

    if window.train_page.is_running() or Task.busy():  # stuck past the close timeout: do not abort in Qt
        log.warning("a background thread did not end; leaving without waiting for it")
        sys.stdout.flush()
        sys.stderr.flush()
        import os

        os._exit(code)
    return code
