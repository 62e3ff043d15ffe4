"""The studio window (PySide6): a thin layer over tlstudio.core."""
