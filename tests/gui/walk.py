"""What a user's hands do in the window, for the walk tests: click a button by what it says, pick a step by its
name, answer a question box by its button, and act when the run reaches a stage (the worker's events reach a
watcher on the GUI thread, as they reach the page)."""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtCore import QObject, Qt, QTimer, Slot
from PySide6.QtWidgets import QAbstractButton, QApplication, QMessageBox


def click(qtbot, button: QAbstractButton) -> None:
    """A left click on a button the user can see and use (never a hidden or greyed one)."""
    assert button.isVisible(), f"{button.text()!r} is not visible"
    assert button.isEnabled(), f"{button.text()!r} is greyed out"
    qtbot.mouseClick(button, Qt.MouseButton.LeftButton)


def button(root, text: str) -> QAbstractButton:
    """The one visible button under `root` whose text (shortcut marks and spaces aside) starts with `text`."""
    found = [b for b in root.findChildren(QAbstractButton)
             if b.isVisible() and " ".join(b.text().replace("&", "").split()).startswith(text)]
    assert len(found) == 1, f"{len(found)} visible buttons say {text!r}"
    return found[0]


def go_to_step(window, qtbot, name: str) -> None:
    """Click the step in the list on the left by its name ("Train", "Try & export")."""
    steps = window.steps
    (row,) = [r for r in range(steps.count()) if steps.item(r).text().split("  ", 1)[1] == name]
    qtbot.mouseClick(steps.viewport(), Qt.MouseButton.LeftButton, pos=steps.visualItemRect(steps.item(row)).center())
    assert steps.currentRow() == row, f"the {name} step did not open"


def answer_question(qtbot, answer: str, seen: list[str]) -> QTimer:
    """When a question box opens, read it (its text goes into `seen`) and click its button `answer`."""
    timer = QTimer()
    timer.setInterval(50)

    def look() -> None:
        box = QApplication.activeModalWidget()
        if isinstance(box, QMessageBox):
            timer.stop()
            seen.append(f"{box.text()} {box.informativeText()}")
            qtbot.mouseClick(button(box, answer), Qt.MouseButton.LeftButton)

    timer.timeout.connect(look)
    timer.start()
    return timer


class Watcher(QObject):
    """Calls `act(event)` for each engine event, on the GUI thread (queued, as the page receives them)."""

    def __init__(self, act: Callable[[object], None]) -> None:
        super().__init__()
        self.act = act

    @Slot(object)
    def on_event(self, event) -> None:
        self.act(event)


def menu_item(window, qtbot, menu_name: str, item_name: str) -> None:
    """Open a menu of the menu bar by a click, and click one of its items."""
    bar = window.menuBar()
    (entry,) = [a for a in bar.actions() if a.text().replace("&", "") == menu_name]
    qtbot.mouseClick(bar, Qt.MouseButton.LeftButton, pos=bar.actionGeometry(entry).center())
    menu = entry.menu()
    qtbot.waitUntil(menu.isVisible, timeout=5000)
    (item,) = [a for a in menu.actions() if a.text().replace("&", "") == item_name]
    assert item.isEnabled(), f"{item_name} is greyed out"
    qtbot.mouseClick(menu, Qt.MouseButton.LeftButton, pos=menu.actionGeometry(item).center())
