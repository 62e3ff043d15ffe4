"""Texts a user reads, proofread by a machine: menus show what they say."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.gui


def test_the_view_menu_reads_as_written(window) -> None:
    """A user saw "Step 5 Try _export": the & of "Try & export" was taken for a shortcut marker."""
    view = next(a.menu() for a in window.menuBar().actions() if a.text().replace("&", "") == "View")
    steps = [a.text() for a in view.actions() if a.text().startswith("Step")]
    assert "Step 5: Try && export" in steps and "Step 1: Data" in steps
    shown = [text.replace("&&", "\0").replace("&", "").replace("\0", "&") for text in steps]  # as Qt draws them
    assert "Step 5: Try & export" in shown


def test_a_sound_view_draws_no_empty_axes_before_a_clip(qtbot, tmp_path) -> None:
    """A user saw empty waveform and spectrogram axes with "mel band (x0.001)" and -400..400 on Evaluate."""
    import numpy as np
    import soundfile as sf

    from tlstudio.gui.widgets.audio_view import AudioView

    view = AudioView()
    qtbot.addWidget(view)
    view.show()
    assert not view.wave_plot.isVisible() and not view.mel_plot.isVisible()
    assert view.title.text() == "Select a clip to see and hear it."
    clip = tmp_path / "tone.wav"
    sf.write(clip, (0.3 * np.sin(np.linspace(0, 3000, 16000))).astype("float32"), 16000)
    with qtbot.waitSignal(view.show_clip(str(clip)).finished, timeout=30000):
        pass
    qtbot.waitUntil(view.rendered, timeout=10000)
    assert view.wave_plot.isVisible() and view.mel_plot.isVisible()
    assert "(x" not in view.mel_plot.getAxis("left").labelString()
