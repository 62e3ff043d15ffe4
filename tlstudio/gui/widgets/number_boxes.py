"""Number fields for ranges a plain spin box cannot show: learning rates in compact notation, and whole
numbers beyond a QSpinBox's 32 bits (a seed goes up to 2**63 - 1). Both answer value(), setValue(),
minimum(), maximum(), setRange() and valueChanged like the spin boxes, so the settings binder treats them alike.
"""

from __future__ import annotations

from PySide6.QtCore import Signal
from PySide6.QtGui import QValidator
from PySide6.QtWidgets import QDoubleSpinBox, QLineEdit, QWidget


class CompactSpinBox(QDoubleSpinBox):
    """A QDoubleSpinBox that shows 0.003 and 1e-07 rather than 0.00300000 (its decimals still set the
    precision it keeps), and reads what it shows, 3e-3 included."""

    def textFromValue(self, value: float) -> str:
        return f"{value:.6g}"

    def valueFromText(self, text: str) -> float:
        try:
            return float(text.strip().removesuffix(self.suffix()).strip())
        except ValueError:
            return self.value()

    def validate(self, text: str, pos: int) -> object:
        body = text.strip().removesuffix(self.suffix()).strip()
        try:
            value = float(body)
        except ValueError:
            partial = body == "" or all(c in "0123456789.eE-+" for c in body)
            return (QValidator.State.Intermediate if partial else QValidator.State.Invalid), text, pos
        if self.minimum() <= value <= self.maximum():
            return QValidator.State.Acceptable, text, pos
        return QValidator.State.Intermediate, text, pos


class _WholeNumbers(QValidator):
    """In range: accepted. Above the maximum: refused as typed. Empty, or below the minimum: fixed up to the
    nearest end (or the last value) when the field is left."""

    def __init__(self, box: BigIntEdit) -> None:
        super().__init__(box)
        self.box = box

    def validate(self, text: str, pos: int) -> object:
        body = text.strip()
        if body == "" or (body == "-" and self.box.minimum() < 0):
            return QValidator.State.Intermediate, text, pos
        try:
            value = int(body)
        except ValueError:
            return QValidator.State.Invalid, text, pos
        if value > self.box.maximum() or (value < 0 <= self.box.minimum()):
            return QValidator.State.Invalid, text, pos
        state = QValidator.State.Acceptable if value >= self.box.minimum() else QValidator.State.Intermediate
        return state, text, pos

    def fixup(self, text: str) -> str:
        try:
            return str(min(max(int(text.strip()), self.box.minimum()), self.box.maximum()))
        except ValueError:
            return str(self.box.value())


class BigIntEdit(QLineEdit):
    """A whole number in any range Python's int holds, typed (the validator refuses what is out of range)."""

    valueChanged = Signal(object)  # an int; `object`, since Qt's int has 32 bits

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._low, self._high, self._value = 0, 2**63 - 1, 0
        self.setValidator(_WholeNumbers(self))
        self.setText("0")
        self.editingFinished.connect(lambda: self._typed(finished=True))
        self.textEdited.connect(lambda _text: self._typed(finished=False))

    def minimum(self) -> int:
        return self._low

    def maximum(self) -> int:
        return self._high

    def setRange(self, low: int, high: int) -> None:
        self._low, self._high = int(low), int(high)
        self.setValue(self._value)

    def value(self) -> int:
        return self._value

    def setValue(self, value: int) -> None:
        value = min(max(int(value), self._low), self._high)
        if str(value) != self.text():
            self.setText(str(value))
        if value != self._value:
            self._value = value
            self.valueChanged.emit(value)

    def _typed(self, finished: bool = True) -> None:
        try:
            value = int(self.text())
        except ValueError:
            if finished:
                self.setText(str(self._value))
            return
        if self._low <= value <= self._high:
            if value != self._value:
                self._value = value
                self.valueChanged.emit(value)
        elif finished:
            self.setValue(value)
