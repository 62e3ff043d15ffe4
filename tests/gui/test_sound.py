"""The Data page for sound: clips listed per class, waveform and log-mel drawn, playback never crashes."""

from __future__ import annotations

from pathlib import Path

import pytest
from PySide6.QtCore import Qt

from tlstudio.demo_audio import make_sound_folder

pytestmark = pytest.mark.gui


def test_selecting_a_clip_shows_waveform_spectrogram_and_plays(window, qtbot, tmp_path: Path) -> None:
    folder = make_sound_folder(tmp_path / "sounds", per_class=4, seed=2)
    window.data_page.open_folder(folder)
    qtbot.waitUntil(lambda: window.state.spec is not None, timeout=30000)
    page = window.data_page
    assert window.state.spec.modality == "audio"
    assert "12 sound clips" in page.summary.text()
    assert page.audio_panel.isVisible() and not page.grid.isVisible()
    assert page.clips.count() == 4
    page.clips.setCurrentRow(2)
    qtbot.waitUntil(page.audio.rendered, timeout=60000)
    x = page.audio.wave_curve.xData  # the full waveform; getData() gives the downsampled view
    assert len(x) > 8000 and abs(float(x[-1]) - (len(x) - 1) / 16000) < 1e-6
    image = page.audio.mel_image.image
    assert image is not None and image.shape[1] == 128
    qtbot.mouseClick(page.audio.play, Qt.MouseButton.LeftButton)  # plays, or says why it cannot
    qtbot.wait(200)
    assert page.audio.player is not None or "Playback is off" in page.audio.playback_note.text()


def test_a_sound_run_is_evaluated_and_tried_as_sound(window, qtbot, tmp_path: Path) -> None:
    folder = make_sound_folder(tmp_path / "sounds", per_class=6, seed=6)
    window.data_page.open_folder(folder)
    qtbot.waitUntil(lambda: window.state.spec is not None, timeout=30000)
    qtbot.waitUntil(lambda: bool(window.model_page.rows) and hasattr(window.model_page, "_current_blocks"),
                    timeout=60000)
    visible = [row["name"] for i, row in enumerate(window.model_page.rows)
               if not window.model_page.table.isRowHidden(i)]
    assert "wav2vec2_base" in visible and "mobilenet_v2" in visible  # sound encoders listed for sound
    names = [row["name"] for row in window.model_page.rows]
    speed = {name: window.model_page.table.item(i, 4).text().count("●") for i, name in enumerate(names)}
    assert speed["yamnet"] >= speed["mobilenet_v2"] > speed["wav2vec2_base"]  # YAMNet is fast on a CPU
    # sound starts from its own measured default (the demo photos had mobilenet_v2): YAMNet, fully fine-tuned
    page = window.model_page
    qtbot.waitUntil(lambda: getattr(page, "_current_key", ("",))[0] == "yamnet", timeout=60000)
    assert page.selected_row()["name"] == "yamnet" and window.state.config.backbone == "yamnet"
    assert page.depth.value() == page.depth.maximum() > 0
    assert "default for sound" in page.about.text()
    window.model_page.epochs.setValue(2)
    with qtbot.waitSignal(window.train_page.finished, timeout=300000):
        window.start_training()
    page = window.evaluate_page
    from tests.gui.walk import click, go_to_step

    go_to_step(window, qtbot, "Evaluate")
    assert page.modality == "audio" and page.samples_view.currentIndex() == 1
    matrix = page.matrix
    row, col = next((r, c) for r in range(matrix.rowCount()) for c in range(matrix.columnCount())
                    if int(matrix.item(r, c).text().split()[0]) > 0)  # a cell that holds clips
    cell = matrix.visualItemRect(matrix.item(row, col)).center()
    qtbot.mouseClick(matrix.viewport(), Qt.MouseButton.LeftButton, pos=cell)
    assert page.clip_list.count() == int(matrix.item(row, col).text().split()[0]) > 0
    page.clip_list.setCurrentRow(0)
    qtbot.waitUntil(page.clip_view.rendered, timeout=30000)
    click(qtbot, page.clip_view.play)  # plays, or says why it cannot
    qtbot.wait(200)
    assert page.clip_view.player is not None or "Playback is off" in page.clip_view.playback_note.text()
    clip = sorted((folder / "tone").iterdir())[0]
    with qtbot.waitSignal(window.try_page.predicted, timeout=60000) as predicted:
        window.try_page.predict([str(clip)])
    assert predicted.args[0][0].top and not predicted.args[0][0].error
