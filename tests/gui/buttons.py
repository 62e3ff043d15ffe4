"""The button inventory (issue 23): every button of the studio's windows, found in the widget tree, and every
button a test clicked as a user does (`qtbot.mouseClick`, or a key press on it). tests/gui/test_zz_buttons.py
fails when a button was never clicked by any test, and writes the inventory beside the layout audit's PNGs.

A button is named by the attribute that holds it ("TrainPage.stop_button", "PredictionCard.correct"), found by
walking up its parents, so a text that changes ("Pause" / "Resume") or a card made per file keeps one name.
Qt's own buttons (inside spin boxes, combo boxes, message boxes, file dialogs) hold no attribute of ours and
are not counted.
"""

from __future__ import annotations

from PySide6.QtWidgets import QAbstractButton, QWidget

present: dict[str, str] = {}  # name -> the button's text when first seen
clicked: set[str] = set()


def name_of(widget: QWidget) -> str | None:
    """The attribute of one of the studio's objects that holds this widget, as "Class.attribute"; a widget
    held by a reusable one is named through it ("EvaluatePage.progress.cancel")."""
    holder: QWidget | None = widget.parentWidget()
    while holder is not None:
        owner = type(holder)
        if owner.__module__.startswith("tlstudio."):
            for attribute, value in vars(holder).items():
                if value is widget:
                    # a part of a reusable widget is named through its holder; a dialog's by the dialog's class
                    reused = owner.__module__.startswith("tlstudio.gui.widgets.") and not holder.isWindow()
                    outer = name_of(holder) if reused else None
                    return f"{outer}.{attribute}" if outer else f"{owner.__name__}.{attribute}"
        holder = holder.parentWidget()
    return None


def take_inventory(root: QWidget) -> None:
    for button in root.findChildren(QAbstractButton):
        name = name_of(button)
        if name is not None and name not in present:
            present[name] = button.text()


def record_click(widget) -> None:
    if isinstance(widget, QAbstractButton) and widget.isEnabled() and widget.isVisible():
        name = name_of(widget)
        if name is not None:
            clicked.add(name)
            present.setdefault(name, widget.text())
