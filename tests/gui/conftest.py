"""GUI tests run offscreen, with settings in a temporary folder (never the user's)."""

from __future__ import annotations

import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import pytest


@pytest.fixture(autouse=True)
def _fresh_settings(tmp_path):
    from PySide6.QtCore import QSettings

    QSettings.setDefaultFormat(QSettings.Format.IniFormat)
    QSettings.setPath(QSettings.Format.IniFormat, QSettings.Scope.UserScope, str(tmp_path / "settings"))
    yield


@pytest.fixture(autouse=True)
def _no_modal_questions(monkeypatch):
    """Closing a window in a test never waits on a question: yes, stop training; no, do not save; the scratch
    twin trains its full budget."""
    from tlstudio.gui.main_window import MainWindow

    monkeypatch.setattr(MainWindow, "_ask_before_closing", lambda self: True)
    monkeypatch.setattr(MainWindow, "_ask_save_changes", lambda self: "discard")
    monkeypatch.setattr(MainWindow, "_ask_scratch_budget", lambda self, twin, metrics: "full")


@pytest.fixture(autouse=True, scope="session")
def _count_button_clicks():
    """Clicks a test makes as a user (qtbot.mouseClick, a key pressed on a button) go into the button inventory
    (tests/gui/buttons.py)."""
    from pytestqt.qtbot import QtBot

    from tests.gui import buttons

    click, key = QtBot.mouseClick, QtBot.keyClick

    def mouse_click(widget, *args, **kwargs):
        buttons.record_click(widget)
        click(widget, *args, **kwargs)

    def key_click(widget, key_code, *args, **kwargs):
        from PySide6.QtCore import Qt

        if key_code in (Qt.Key.Key_Space, Qt.Key.Key_Return, Qt.Key.Key_Enter):
            buttons.record_click(widget)
        key(widget, key_code, *args, **kwargs)

    QtBot.mouseClick, QtBot.keyClick = staticmethod(mouse_click), staticmethod(key_click)
    yield
    QtBot.mouseClick, QtBot.keyClick = staticmethod(click), staticmethod(key)


@pytest.fixture()
def window(qtbot):
    from tests.gui import buttons
    from tlstudio.gui.app import create_window

    _app, win = create_window()
    qtbot.addWidget(win)
    win.ask_before_closing = lambda: True
    win.show()
    yield win
    buttons.take_inventory(win)
    win.train_page.shutdown()
    from tlstudio.gui.tasks import Task

    Task.wait_all(30000)
