"""Arrays the core computes (heat maps, what the network sees) as Qt pictures."""

from __future__ import annotations

import numpy as np
from PySide6.QtGui import QImage, QPixmap


def array_pixmap(pixels: np.ndarray) -> QPixmap:
    """(H, W, 3) uint8 -> QPixmap (copied, so the array may go)."""
    pixels = np.ascontiguousarray(pixels)
    h, w = pixels.shape[:2]
    return QPixmap.fromImage(QImage(pixels.data, w, h, 3 * w, QImage.Format.Format_RGB888).copy())
