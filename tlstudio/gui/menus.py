"""The main window's menus: File (data, projects, runs, the recent lists), View (dark mode, the steps), Help.

The actions only call the window's public methods; the window keeps the actions it needs later
(`recent_data`, `recent_project_list`, `reopen_action`, `dark_action`).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from PySide6.QtCore import Qt
from PySide6.QtGui import QAction, QKeySequence

from tlstudio.gui.recent import RecentList
from tlstudio.gui.settings import settings

if TYPE_CHECKING:
    from tlstudio.gui.main_window import MainWindow


def build_menus(window: MainWindow, steps: tuple[str, ...]) -> None:
    def action(text: str, run, shortcut=None) -> QAction:
        made = QAction(text, window) if shortcut is None else QAction(text, window, shortcut=shortcut)
        made.triggered.connect(lambda _checked=False: run())  # (never triggered's bool as an argument)
        return made

    keys = QKeySequence.StandardKey
    file_menu = window.menuBar().addMenu("&File")
    file_menu.addAction(action("&Open data folder…", window.choose_data_folder, keys.Open))
    file_menu.addAction(action("Open the &demo data", window.open_demo_data))
    window.recent_data = RecentList("recent/folders", file_menu.addMenu("Open &recent"), window.open_data_folder,
                                    window)
    file_menu.addSeparator()
    file_menu.addAction(action("Open &project…", window.open_project_dialog))
    file_menu.addAction(action("&Save project", window.save_project, keys.Save))
    file_menu.addAction(action("Save project &as…", lambda: window.save_project(ask=True), keys.SaveAs))
    window.recent_project_list = RecentList("recent/projects", file_menu.addMenu("Recent pro&jects"),
                                            lambda path: window.open_project(Path(path)), window)
    window.reopen_action = QAction("Reopen the last project at launch", window, checkable=True)
    window.reopen_action.setChecked(settings().value("project/reopen_last", True, type=bool))
    window.reopen_action.toggled.connect(lambda on: settings().setValue("project/reopen_last", on))
    file_menu.addAction(window.reopen_action)
    file_menu.addSeparator()
    open_run = action("Open &run…", window.open_run_dialog)
    open_run.setToolTip("Open any run folder and make it the model Evaluate and Try & export use.")
    file_menu.addAction(open_run)
    file_menu.addSeparator()
    file_menu.addAction(action("&Quit", window.close, keys.Quit))
    view_menu = window.menuBar().addMenu("&View")
    window.dark_action = QAction("&Dark mode", window, checkable=True)
    window.dark_action.setChecked(settings().value("view/dark", False, type=bool))
    window.dark_action.toggled.connect(lambda dark: window.set_dark(dark))
    view_menu.addAction(window.dark_action)
    view_menu.addSeparator()
    for row, label in enumerate(steps):
        number, _, name = label.strip().partition("  ")
        # "&" marks a menu's shortcut letter: "Try & export" must be written "Try && export" to show its "&"
        view_menu.addAction(action(f"Step {number}: {name.replace('&', '&&')}", lambda r=row: window.go_to_step(r),
                                   QKeySequence(f"Ctrl+{row + 1}")))
    help_menu = window.menuBar().addMenu("&Help")
    help_menu.addAction(action("Help for this &page", window.show_help, QKeySequence(Qt.Key.Key_F1)))
