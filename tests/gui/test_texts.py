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


def test_one_long_error_never_widens_the_try_list(qtbot) -> None:
    """A user saw one long error line widen the list: a horizontal scrollbar, and a 66% bar that looked full."""
    from PySide6.QtWidgets import QScrollArea, QVBoxLayout, QWidget

    from tlstudio.core.inference.predict import Prediction
    from tlstudio.gui.pages.try_page import PredictionCard

    long_path = "/home/someone/" + "very_long_folder_name_without_spaces/" * 6 + "IMG_20261206_123456_burst.heic"
    cards = QWidget()
    column = QVBoxLayout(cards)
    column.addWidget(PredictionCard(Prediction(long_path, [], error="cannot be read: " + long_path)))
    column.addWidget(PredictionCard(Prediction("/x/a.jpg", [("cat", 0.66), ("dog", 0.34)])))
    scroll = QScrollArea()
    qtbot.addWidget(scroll)
    scroll.setWidgetResizable(True)
    scroll.setWidget(cards)
    scroll.resize(520, 600)
    scroll.show()
    qtbot.waitExposed(scroll)
    assert cards.minimumSizeHint().width() <= scroll.viewport().width()
    assert not scroll.horizontalScrollBar().isVisible()
    assert cards.width() <= scroll.viewport().width()


def test_mistake_captions_keep_true_and_predicted_in_view(window, qtbot, tmp_path) -> None:
    """A user lost the "true -> predicted" line under thumbnails of long file names (it wrapped out of sight)."""
    from tests.gui.helpers import train_tiny
    from tlstudio.demo import make_image_folder

    names = ("a class with a rather long name number one", "another class with an even longer name two")
    folder = make_image_folder(tmp_path / "long names", classes=names, per_class=12, size=(64, 48), seed=3)
    train_tiny(window, qtbot, folder)
    window.steps.setCurrentRow(3)
    gallery = window.evaluate_page.gallery
    qtbot.waitUntil(lambda: bool(gallery.thumbs.captions), timeout=30000)
    width = gallery.gridSize().width()
    metrics = gallery.fontMetrics()
    for caption, tip in zip(gallery.thumbs.captions, gallery.thumbs.tips, strict=True):
        lines = caption.split("\n")
        assert len(lines) == 2 and "→" in lines[1]
        assert all(metrics.horizontalAdvance(line) <= width for line in lines), lines
        assert any(name in tip for name in names)  # the whole names in the tooltip


def test_prediction_bars_start_at_one_edge_whatever_the_class_names(qtbot) -> None:
    from tlstudio.core.inference.predict import Prediction
    from tlstudio.gui.pages.try_page import PredictionCard
    from tlstudio.gui.widgets.contrast_bar import ContrastBar

    card = PredictionCard(Prediction("/x/a.jpg", [("a much longer class name number zero", 0.5), ("c7", 0.3),
                                                  ("class_05", 0.2)]))
    qtbot.addWidget(card)
    card.resize(700, 200)
    card.show()
    qtbot.waitExposed(card)
    bars = card.findChildren(ContrastBar)
    assert len(bars) == 3 and len({bar.mapTo(card, bar.rect().topLeft()).x() for bar in bars}) == 1


def test_the_try_list_starts_with_a_count_of_unusable_files(window, qtbot, shapes_dir, tmp_path) -> None:
    """A user scrolled 120 cards of phone recordings to learn they all failed for one reason."""
    from tests.gui.helpers import train_tiny

    train_tiny(window, qtbot, shapes_dir)
    window.steps.setCurrentRow(4)
    page = window.try_page
    good = sorted(str(p) for p in shapes_dir.rglob("*.jpg"))[:2]
    empty = [tmp_path / f"empty_{i}.jpg" for i in range(3)]
    for path in empty:
        path.write_bytes(b"")
    with qtbot.waitSignal(page.predicted, timeout=60000):
        page.predict(good + [str(p) for p in empty])
    assert page.problems.isVisible()
    assert page.problems.text().startswith("3 files cannot be used. 3 files: ")
    assert page.card_count() == 5


def test_the_folded_advanced_settings_draw_no_empty_frame(window, qtbot) -> None:
    """A user saw an empty "Advanced" frame and took it for a missing panel."""
    from PySide6.QtCore import Qt
    from PySide6.QtWidgets import QStyle, QStyleOptionGroupBox

    window.steps.setCurrentRow(1)
    box = window.model_page.advanced
    assert not box.isChecked() and "border: none" in box.styleSheet()
    assert not window.model_page.advanced_body.isVisible()
    option = QStyleOptionGroupBox()
    box.initStyleOption(option)
    check = box.style().subControlRect(QStyle.ComplexControl.CC_GroupBox, option,
                                       QStyle.SubControl.SC_GroupBoxCheckBox, box)
    qtbot.mouseClick(box, Qt.MouseButton.LeftButton, pos=check.center())  # the user unfolds it
    assert box.isChecked() and window.model_page.advanced_body.isVisible() and box.styleSheet() == ""


def test_legends_sit_above_the_curves_never_over_them(window, qtbot, shapes_dir) -> None:
    """A user saw legends drawn over the curves (pyqtgraph's LegendItem lives inside the plot's view box)."""
    import pyqtgraph as pg

    from tests.gui.helpers import train_tiny

    train_tiny(window, qtbot, shapes_dir, epochs=2)
    plots = window.train_page.plots
    assert plots.loss_plot.legend_line.entries() == ["train", "validation"]
    assert plots.batch_plot.legend_line.entries() == ["raw", "smoothed"]
    for plot in window.findChildren(pg.PlotWidget):
        assert plot.plotItem.legend is None, "a legend inside the plot would cover its curves"
    for plot in (plots.batch_plot, plots.loss_plot, plots.acc_plot, plots.lr_plot):
        legend = plot.legend_line.legend
        assert legend.isVisible() and legend.geometry().bottom() <= plot.geometry().top()
    assert not plots.blank_notes[0].isVisible()  # batches were drawn live: no "drawn live" note over them


def test_the_welcome_leaves_the_status_bar_when_data_opens(window, qtbot, shapes_dir) -> None:
    """A user read "Welcome. Choose a folder, or try the demo data." under a folder already open."""
    from tests.gui.helpers import open_folder
    from tlstudio.gui.main_window import WELCOME

    assert window.statusBar().currentMessage() == WELCOME
    open_folder(window, qtbot, shapes_dir)
    assert window.statusBar().currentMessage() != WELCOME
