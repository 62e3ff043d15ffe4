"""A sound clip as a listener expects: its waveform, its log-mel spectrogram (what the model sees) and
a Play button. Decoding and the spectrogram run off the GUI thread; playback uses QtMultimedia, imported
once when the window is made (`load_multimedia`): where it cannot load (no PulseAudio on Linux, say) the
view says why and still works.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QUrl
from PySide6.QtWidgets import QHBoxLayout, QLabel, QPushButton, QVBoxLayout, QWidget

from tlstudio.gui.tasks import Task


def clip_views(path: str, _progress, _control) -> dict[str, Any]:
    import torch

    from tlstudio.core.media.audio import AudioSettings, load_mono
    from tlstudio.core.media.audio_frontend import LogMelImage

    settings = AudioSettings()
    wave = load_mono(path, settings.sample_rate)
    frontend = LogMelImage(settings).eval()
    with torch.no_grad():
        mel = frontend.mel(wave.unsqueeze(0))[0]
        db = 10 * torch.log10(mel.clamp_min(1e-10))
        db = (db - db.max()).clamp_min(-settings.top_db)
    return {"wave": wave.numpy().astype(np.float64), "rate": settings.sample_rate, "mel_db": db.numpy(),
            "hop": settings.mel_hop}


_MULTIMEDIA: str | None = None  # after load_multimedia(): "" when playback can work, else why it is off


def load_multimedia() -> str:
    """Load QtMultimedia and start its sound backend once, on the GUI thread, before any background task
    starts ("" or why playback is off). Done later, while a worker thread ran Python (decoding a clip,
    building YAMNet), the import and the backend's first `audioOutputs()` each deadlocked both threads in a
    full test run (py-spy: the GUI thread waiting inside Qt, the worker waiting for the GIL). Cost at start:
    about 30 ms import + 40 ms backend."""
    global _MULTIMEDIA
    if _MULTIMEDIA is None:
        try:
            from PySide6.QtMultimedia import QMediaDevices
        except ImportError as exc:
            _MULTIMEDIA = f"Playback is off: Qt's sound library could not load ({exc}). On Linux, install libpulse0."
        else:
            _MULTIMEDIA = "" if QMediaDevices.audioOutputs() else (
                "Playback is off: this computer has no sound output device (speakers or headphones).")
    return _MULTIMEDIA


def _player() -> tuple[Any, str]:
    reason = load_multimedia()
    if reason:
        return None, reason
    from PySide6.QtMultimedia import QAudioOutput, QMediaPlayer

    player = QMediaPlayer()
    output = QAudioOutput()
    player.setAudioOutput(output)
    player._output = output  # keep the output alive as long as the player
    return player, ""


class AudioView(QWidget):
    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.path: str | None = None
        self.task: Task | None = None
        self.player: Any = None
        self.title = QLabel("Select a clip to see and hear it.")
        self.play = QPushButton("▶ Play")
        self.play.setEnabled(False)
        self.play.clicked.connect(self._play)
        self.playback_note = QLabel("")
        self.playback_note.setWordWrap(True)
        self.wave_plot = pg.PlotWidget(title="Waveform")
        self.wave_plot.setLabel("bottom", "seconds")
        self.wave_plot.getAxis("bottom").enableAutoSIPrefix(False)
        self.wave_plot.setMenuEnabled(False)
        self.wave_curve = self.wave_plot.plot(pen=pg.mkPen((30, 90, 200), width=1))
        self.wave_plot.setDownsampling(auto=True, mode="peak")
        self.wave_plot.setClipToView(True)
        self.mel_plot = pg.PlotWidget(title="Log-mel spectrogram (what the model sees)")
        self.mel_plot.setLabel("bottom", "seconds")
        self.mel_plot.getAxis("bottom").enableAutoSIPrefix(False)
        self.mel_plot.setLabel("left", "mel band")
        self.mel_plot.setMenuEnabled(False)
        self.mel_image = pg.ImageItem()
        self.mel_image.setColorMap(pg.colormap.get("viridis"))
        self.mel_plot.addItem(self.mel_image)
        top = QHBoxLayout()
        top.addWidget(self.title, 1)
        top.addWidget(self.play)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(top)
        layout.addWidget(self.playback_note)
        layout.addWidget(self.wave_plot, 1)
        layout.addWidget(self.mel_plot, 1)
        layout.addStretch(0)
        for plot in (self.wave_plot, self.mel_plot):  # axes with nothing on them read as odd units: shown with a clip
            plot.getAxis("left").enableAutoSIPrefix(False)
            plot.setVisible(False)

    def apply_theme(self, dark: bool) -> None:
        from tlstudio.gui.plots import theme_plot

        for plot in (self.wave_plot, self.mel_plot):
            theme_plot(plot, dark)

    def show_clip(self, path: str) -> Task:
        self.path = path
        self.title.setText(f"<b>{Path(path).name}</b> · loading…")
        task = Task(lambda progress, control: clip_views(path, progress, control))
        task.finished.connect(lambda views, p=path: self._render(p, views))
        task.failed.connect(lambda message, _hint: self.title.setText(f"{Path(path).name}: {message}"))
        self.task = task.start()
        return self.task

    def _render(self, path: str, views: dict[str, Any]) -> None:
        if path != self.path:
            return
        wave, rate = views["wave"], views["rate"]
        self.wave_curve.setData(np.arange(len(wave), dtype=np.float64) / rate, wave)
        mel = views["mel_db"]
        self.mel_image.setImage(mel.T, autoLevels=True)
        self.mel_image.setRect(0, 0, mel.shape[1] * views["hop"] / rate, mel.shape[0])
        self.title.setText(f"<b>{Path(path).name}</b> · {len(wave) / rate:.2f} s")
        self.play.setEnabled(True)
        self.wave_plot.setVisible(True)
        self.mel_plot.setVisible(True)

    def _play(self) -> None:
        if self.player is None:
            self.player, reason = _player()
            if self.player is None:
                self.playback_note.setText(reason)
                self.play.setEnabled(False)
                return
            self.player.errorOccurred.connect(lambda _error, text: self.playback_note.setText(
                f"Playback failed: {text or 'no sound device'}"))
        self.player.setSource(QUrl.fromLocalFile(self.path))
        self.player.play()
        self.playback_note.setText(f"Playing {Path(self.path).name}…")

    def rendered(self) -> bool:
        return self.play.isEnabled()
