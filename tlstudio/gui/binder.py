"""Settings from one definition: widgets bound to TrainConfig fields (Orange's `Setting` idea).

`bind(widget, name)` gives a widget the field's words, tooltip, range, step, decimals and unit from its
metadata (core/training/config.py `field_meta`), so a widget offers exactly what `validate()` accepts.
`read(config)` copies the widgets into a config, `show(config)` a config into the widgets; `edited` says
which setting the user changed by hand (not by `show`). A maximum set by another setting (accumulate <=
batch_size) follows that setting's widget. `set_kind` hides the settings that do not apply to the kind of
data open (the sound window for pictures).

Given the studio's state, a binder is live: an edit goes into `state.config` at once and is announced
(`state.settings_changed`), and what another page (or a project, or new data) changed there is shown, so
two pages that show one setting never disagree and none overwrites the other's.
"""

from __future__ import annotations

from dataclasses import fields
from typing import Any

from PySide6.QtCore import QObject, Signal
from PySide6.QtWidgets import (
    QAbstractSpinBox,
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QFormLayout,
    QLabel,
    QLineEdit,
    QSpinBox,
    QWidget,
)

from tlstudio.core.training.config import TrainConfig, field_meta, numeric_range
from tlstudio.gui.widgets.number_boxes import BigIntEdit

INT32 = (-(2**31), 2**31 - 1)  # what a QSpinBox holds
_TYPES = {f.name: str(f.type) for f in fields(TrainConfig)}


def _changed(widget: QWidget) -> Any:
    if isinstance(widget, QComboBox):
        return widget.currentIndexChanged
    if isinstance(widget, QCheckBox):
        return widget.toggled
    if isinstance(widget, (QAbstractSpinBox, BigIntEdit)):
        return widget.valueChanged
    if isinstance(widget, QLineEdit):
        return widget.textChanged
    raise TypeError(f"The settings binder cannot bind a {type(widget).__name__}.")


def widget_value(widget: QWidget) -> Any:
    if isinstance(widget, QComboBox):
        return widget.currentData()
    if isinstance(widget, QCheckBox):
        return widget.isChecked()
    if isinstance(widget, (QAbstractSpinBox, BigIntEdit)):
        return widget.value()
    return widget.text()


def set_widget_value(widget: QWidget, value: Any) -> None:
    if isinstance(widget, QComboBox):
        index = widget.findData(value)
        if index >= 0:
            widget.setCurrentIndex(index)
    elif isinstance(widget, QCheckBox):
        widget.setChecked(bool(value))
    elif isinstance(widget, (QAbstractSpinBox, BigIntEdit)):
        widget.setValue(value)
    else:
        widget.setText(str(value))


class SettingsBinder(QObject):
    edited = Signal(str)  # the name of a setting the user changed by hand

    def __init__(self, parent: QObject | None = None, state: Any = None) -> None:
        super().__init__(parent)
        self.widgets: dict[str, QWidget] = {}  # in the order of TrainConfig's fields once bound
        self.labels: dict[str, QLabel] = {}
        self._rows: dict[str, QWidget] = {}  # what a form row shows: the widget, or a box around it
        self._showing = False
        self._writing = False  # announcing an edit of ours: not shown back
        self.state = state  # a StudioState: live (see above); None: read and show only
        if state is not None:
            state.settings_changed.connect(self._changed_elsewhere)

    # -- binding ----------------------------------------------------------------------------------------
    def bind(self, widget: QWidget, name: str) -> QWidget:
        """`widget` now shows and edits the setting `name`, within its range; returns the widget."""
        meta = field_meta(name)
        if meta["min"] is not None:
            self._number_box(widget, name, meta)
        if isinstance(widget, QComboBox) and widget.count() == 0:
            for value, words in (meta["choice_labels"] or {c: c for c in meta["choices"] or ()}).items():
                widget.addItem(words, value)
        widget.setToolTip(meta["tooltip"] or meta["help"])
        _changed(widget).connect(lambda *_args, name=name: self._changed(name))
        order = list(_TYPES)
        self.widgets = dict(sorted({**self.widgets, name: widget}.items(), key=lambda item: order.index(item[0])))
        self._follow_limits()
        return widget

    def add_row(self, form: QFormLayout, widget: QWidget, name: str, shown: QWidget | None = None) -> QWidget:
        """Bind, and add a row to `form` labelled with the setting's words; the row holds `shown` (a box around
        the widget, with a button beside it) where given. Returns the bound widget."""
        self.bind(widget, name)
        label = QLabel(field_meta(name)["label"])
        label.setToolTip(widget.toolTip())
        form.addRow(label, shown or widget)
        self.labels[name] = label
        self._rows[name] = shown or widget
        return widget

    def _number_box(self, widget: QWidget, name: str, meta: Any) -> None:
        low, high = numeric_range(name)
        if isinstance(widget, QSpinBox) and not (INT32[0] <= low and high <= INT32[1]):
            raise ValueError(f"A QSpinBox holds {INT32[0]}..{INT32[1]}; the setting '{name}' needs {low}..{high}: "
                             "bind a BigIntEdit.")
        if isinstance(widget, QDoubleSpinBox) and meta["decimals"] is not None:
            widget.setDecimals(meta["decimals"])  # before the range, which the box rounds to its decimals
        if isinstance(widget, (QSpinBox, BigIntEdit)):
            widget.setRange(int(low), int(high))
        else:
            widget.setRange(low, high)
        if isinstance(widget, QAbstractSpinBox):
            if meta["step"] is not None:
                widget.setSingleStep(meta["step"])
            if meta["unit"]:
                widget.setSuffix(f" {meta['unit']}")

    # -- both ways --------------------------------------------------------------------------------------
    def value(self, name: str) -> Any:
        """What the widget of setting `name` holds, as the setting's type."""
        value, kind = widget_value(self.widgets[name]), _TYPES[name]
        return int(value) if kind == "int" else float(value) if kind == "float" else value

    def read(self, config: TrainConfig) -> TrainConfig:
        """The widgets' values into `config` (returned)."""
        for name in self.widgets:
            setattr(config, name, self.value(name))
        return config

    def show(self, config: TrainConfig, names: list[str] | None = None) -> None:
        """`config`'s values in the widgets (all, or `names`), in field order, so that a bound maximum is set
        before what it bounds."""
        before, self._showing = self._showing, True
        try:
            for name, widget in self.widgets.items():
                if names is None or name in names:
                    set_widget_value(widget, getattr(config, name))
                    self._follow_limits()
        finally:
            self._showing = before

    def set_kind(self, modality: str | None) -> None:
        """Show the settings that apply to this kind of data ("image", "audio"; None: before any data, those
        that apply to every kind)."""
        for name, widget in self.widgets.items():
            kinds = field_meta(name)["kinds"]
            visible = modality in kinds if modality else len(kinds) > 1
            self._rows.get(name, widget).setVisible(visible)
            if name in self.labels:
                self.labels[name].setVisible(visible)

    # -- inside -----------------------------------------------------------------------------------------
    def _changed(self, name: str) -> None:
        self._follow_limits()
        if self._showing:
            return
        if self.state is not None:
            before, self._writing = self._writing, True
            try:
                setattr(self.state.config, name, self.value(name))
                self.state.settings_changed.emit(name)
            finally:
                self._writing = before
        self.edited.emit(name)

    def _changed_elsewhere(self, name: str) -> None:
        if not self._writing:
            self.show(self.state.config, None if not name else [name])

    def _follow_limits(self) -> None:
        """A maximum another setting sets (accumulate <= batch_size) follows that setting's widget."""
        for name, widget in self.widgets.items():
            bound = field_meta(name)["max"]
            if isinstance(bound, str) and bound in self.widgets:
                high = widget_value(self.widgets[bound])
                if widget.maximum() != high:
                    widget.setMaximum(int(high) if _TYPES[name] == "int" else high)
