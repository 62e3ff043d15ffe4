"""Most-recent-first lists kept in the settings (data folders, projects), each mirrored in a menu."""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtGui import QAction
from PySide6.QtWidgets import QMenu, QWidget

from tlstudio.gui.settings import settings

MAX_RECENT = 8


class RecentList:
    def __init__(self, key: str, menu: QMenu, open_item: Callable[[str], None], parent: QWidget) -> None:
        self.key, self.menu, self.open_item, self.parent = key, menu, open_item, parent
        self.refresh_menu()

    def items(self) -> list[str]:
        value = settings().value(self.key, [])
        return [value] if isinstance(value, str) else list(value or [])

    def remember(self, item: str) -> None:
        settings().setValue(self.key, ([item] + [i for i in self.items() if i != item])[:MAX_RECENT])
        self.refresh_menu()

    def refresh_menu(self) -> None:
        self.menu.clear()
        items = self.items()
        for item in items:
            action = QAction(item, self.parent)
            action.triggered.connect(lambda _checked=False, i=item: self.open_item(i))
            self.menu.addAction(action)
        self.menu.setEnabled(bool(items))
