"""Light and dark looks: Fusion style, a palette, and the stylesheet from resources/style.qss."""

from __future__ import annotations

import importlib.resources

import pyqtgraph as pg
from PySide6.QtGui import QColor, QPalette
from PySide6.QtWidgets import QApplication

# Text colours that read on both themes (WCAG >= 3 against the light and the dark window; tests/gui/audit.py)
WARNING_RED = "#d9463a"  # 4.3:1 on white, 3.5:1 on the dark window (#c0392b was 2.75:1 there)
GOOD_GREEN = "#2e9f4a"  # 3.4:1 and 4.4:1

# Fusion outlines check boxes in a shade of the window colour: 1.1:1 against the dark window (a user looked for
# the test-time augmentation box) and 1.7:1 against the light one, below WCAG's 3:1 for controls. Drawn here
# with a border of enough contrast in each mode; a checked box is filled.
_INDICATORS = """
QCheckBox::indicator, QGroupBox::indicator {{ width: 13px; height: 13px; border: 1px solid {border};
    border-radius: 3px; background: {fill}; }}
QCheckBox::indicator:checked, QGroupBox::indicator:checked {{ background: #2d78dc; border-color: {checked}; }}
QCheckBox::indicator:disabled, QGroupBox::indicator:disabled {{ border-color: {disabled}; }}
"""
DARK_INDICATORS = _INDICATORS.format(border="#9aa0a8", fill="#1c1e21", checked="#cfd6e0", disabled="#5a5f66")
LIGHT_INDICATORS = _INDICATORS.format(border="#5f6570", fill="#ffffff", checked="#1f5fb8", disabled="#b0b4ba")


def _dark_palette() -> QPalette:
    palette = QPalette()
    colors = {
        QPalette.ColorRole.Window: QColor(37, 39, 43), QPalette.ColorRole.WindowText: QColor(230, 230, 230),
        QPalette.ColorRole.Base: QColor(28, 30, 33), QPalette.ColorRole.AlternateBase: QColor(44, 46, 50),
        QPalette.ColorRole.Text: QColor(230, 230, 230), QPalette.ColorRole.Button: QColor(50, 53, 58),
        QPalette.ColorRole.ButtonText: QColor(230, 230, 230), QPalette.ColorRole.Highlight: QColor(45, 120, 220),
        QPalette.ColorRole.HighlightedText: QColor(255, 255, 255), QPalette.ColorRole.ToolTipBase: QColor(50, 53, 58),
        QPalette.ColorRole.ToolTipText: QColor(230, 230, 230),
        QPalette.ColorRole.PlaceholderText: QColor(140, 140, 140),
    }
    for role, color in colors.items():
        palette.setColor(role, color)
    palette.setColor(QPalette.ColorGroup.Disabled, QPalette.ColorRole.Text, QColor(120, 120, 120))
    palette.setColor(QPalette.ColorGroup.Disabled, QPalette.ColorRole.ButtonText, QColor(120, 120, 120))
    palette.setColor(QPalette.ColorGroup.Disabled, QPalette.ColorRole.WindowText, QColor(120, 120, 120))
    return palette


def apply_style(app: QApplication, dark: bool = False) -> None:
    app.setStyle("Fusion")
    app.setPalette(_dark_palette() if dark else app.style().standardPalette())
    qss = (importlib.resources.files("tlstudio.resources") / "style.qss").read_text(encoding="utf-8")
    app.setStyleSheet(qss + (DARK_INDICATORS if dark else LIGHT_INDICATORS))
    pg.setConfigOption("background", (28, 30, 33) if dark else "w")
    pg.setConfigOption("foreground", (220, 220, 220) if dark else (60, 60, 60))
