"""A lazy, cached thumbnail grid: decodes only what scrolls into view, off the GUI thread.

QImageReader with a scaled size decodes JPEGs at reduced resolution (fast) in a thread pool; the GUI
thread only turns finished QImages into pixmaps. Thousands of files scroll smoothly.
"""

from __future__ import annotations

import os
from collections import OrderedDict
from collections.abc import Sequence

from PySide6.QtCore import QAbstractListModel, QModelIndex, QObject, QRunnable, QSize, Qt, QThreadPool, Signal
from PySide6.QtGui import QColor, QImage, QImageReader, QPixmap
from PySide6.QtWidgets import QListView

CACHE_LIMIT = 3000


class _Sink(QObject):
    loaded = Signal(str, QImage)


class _Load(QRunnable):
    def __init__(self, path: str, size: int, sink: _Sink) -> None:
        super().__init__()
        self.path, self.size, self.sink = path, size, sink

    def run(self) -> None:
        reader = QImageReader(self.path)
        reader.setAutoTransform(True)
        full = reader.size()
        if full.isValid() and full.width() > 0 and full.height() > 0:
            reader.setScaledSize(full.scaled(self.size, self.size, Qt.AspectRatioMode.KeepAspectRatio))
        image = reader.read()
        self.sink.loaded.emit(self.path, image)


class ThumbnailModel(QAbstractListModel):
    def __init__(self, size: int = 96, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.size = size
        self.paths: list[str] = []
        self.captions: list[str] = []
        self.tips: list[str] = []
        self._row: dict[str, int] = {}
        self._cache: OrderedDict[str, QPixmap] = OrderedDict()
        self._pending: set[str] = set()
        self._sink = _Sink()
        self._sink.loaded.connect(self._on_loaded)
        self._pool = QThreadPool(self)
        self._pool.setMaxThreadCount(2)
        self._placeholder = QPixmap(size, size)
        self._placeholder.fill(QColor(128, 128, 128, 40))
        self._broken = QPixmap(size, size)
        self._broken.fill(QColor(200, 60, 60, 90))

    def set_paths(self, paths: Sequence[str], captions: Sequence[str] | None = None,
                  tips: Sequence[str] | None = None) -> None:
        self.beginResetModel()
        self.paths = list(paths)
        self.captions = list(captions) if captions is not None else [os.path.basename(p) for p in self.paths]
        self.tips = list(tips) if tips is not None else self.paths
        self._row = {path: row for row, path in enumerate(self.paths)}
        self._pool.clear()
        self._pending.clear()
        self.endResetModel()

    def rowCount(self, parent: QModelIndex = QModelIndex()) -> int:  # noqa: B008 - Qt API
        return 0 if parent.isValid() else len(self.paths)

    def data(self, index: QModelIndex, role: int = Qt.ItemDataRole.DisplayRole):
        if not index.isValid():
            return None
        path = self.paths[index.row()]
        if role == Qt.ItemDataRole.DisplayRole:
            return self.captions[index.row()]
        if role == Qt.ItemDataRole.ToolTipRole:
            return self.tips[index.row()]
        if role == Qt.ItemDataRole.DecorationRole:
            pixmap = self._cache.get(path)
            if pixmap is not None:
                self._cache.move_to_end(path)
                return pixmap
            if path not in self._pending:
                self._pending.add(path)
                self._pool.start(_Load(path, self.size, self._sink))
            return self._placeholder
        return None

    def _on_loaded(self, path: str, image: QImage) -> None:
        self._pending.discard(path)
        self._cache[path] = QPixmap.fromImage(image) if not image.isNull() else self._broken
        while len(self._cache) > CACHE_LIMIT:
            self._cache.popitem(last=False)
        row = self._row.get(path)
        if row is not None:
            index = self.index(row)
            self.dataChanged.emit(index, index, [Qt.ItemDataRole.DecorationRole])

    def pending(self) -> int:
        return len(self._pending)


class ThumbnailGrid(QListView):
    def __init__(self, size: int = 96, parent=None) -> None:
        super().__init__(parent)
        self.thumbs = ThumbnailModel(size, self)
        self.setModel(self.thumbs)
        self.setViewMode(QListView.ViewMode.IconMode)
        self.setIconSize(QSize(size, size))
        self.setGridSize(QSize(size + 24, size + 30))
        self.setResizeMode(QListView.ResizeMode.Adjust)
        self.setUniformItemSizes(True)
        self.setLayoutMode(QListView.LayoutMode.Batched)
        self.setBatchSize(200)
        self.setMovement(QListView.Movement.Static)
        self.setWordWrap(False)
        self.setTextElideMode(Qt.TextElideMode.ElideMiddle)
        self.setSelectionMode(QListView.SelectionMode.SingleSelection)
