"""Settings from one definition: each Model-page widget offers exactly the range validate() enforces, the
binder keeps widgets and the config in step both ways, data of another kind brings its own defaults for
what was not set by hand, and the Train page's Start button starts a run when it is clicked."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QComboBox, QPushButton

from tests.gui.helpers import open_folder, pick_backbone
from tlstudio.core.errors import ConfigError
from tlstudio.core.training.config import TrainConfig, field_meta, numeric_range

pytestmark = pytest.mark.gui


def _beyond(name: str, low: float, high: float) -> tuple[float, float]:
    if isinstance(getattr(TrainConfig(), name), int):
        return low - 1, high + 1
    return math.nextafter(low, -math.inf), math.nextafter(high, math.inf)


def test_every_bound_widget_offers_exactly_what_validate_accepts(window) -> None:
    page = window.model_page
    widgets = page.settings.widgets
    numeric = [name for name in widgets if field_meta(name)["min"] is not None]
    assert {"epochs", "batch_size", "accumulate", "lr", "backbone_lr_factor", "warmup_epochs", "weight_decay",
            "label_smoothing", "window_seconds", "seed"} <= set(numeric)
    shown = page.settings.read(TrainConfig())  # accumulate's maximum: the batch size the page shows
    for name in numeric:
        widget, meta = widgets[name], field_meta(name)
        low, high = numeric_range(name, shown)
        assert (widget.minimum(), widget.maximum()) == (low, high), name
        assert widget.toolTip() == meta["tooltip"] and page.settings.labels[name].text() == meta["label"]
        below, above = _beyond(name, low, high)
        for value in (low, high):  # the widget holds both ends, and validate accepts them
            widget.setValue(value)
            assert widget.value() == value, name
            config = page.settings.read(TrainConfig())
            config.validate()
        for value in (below, above):  # just beyond: validate refuses it, the widget stays at the end
            with pytest.raises(ConfigError, match=meta["flag"]):
                TrainConfig(**{"batch_size": shown.batch_size, name: value}).validate()
            widget.setValue(value)
            assert widget.value() == (low if value < low else high), name
        widget.setValue(getattr(shown, name))
    for name in ("schedule", "head", "augment"):
        combo = widgets[name]
        assert isinstance(combo, QComboBox)
        assert {combo.itemData(i) for i in range(combo.count())} == set(field_meta(name)["choices"])


def test_the_micro_batches_follow_the_batch_size(window) -> None:
    page = window.model_page
    page.batch.setValue(8)
    assert page.accumulate.maximum() == 8 == numeric_range("accumulate", page.settings.read(TrainConfig()))[1]
    page.accumulate.setValue(8)
    page.batch.setValue(4)  # fewer files than micro-batches is not a setting validate accepts: it follows
    assert page.accumulate.value() == page.accumulate.maximum() == 4


def _type(qtbot, widget, text: str) -> None:
    widget.selectAll()
    qtbot.keyClicks(widget, text)
    qtbot.keyClick(widget, Qt.Key.Key_Return)


def test_widgets_and_the_config_stay_in_step_both_ways(window, qtbot) -> None:
    page = window.model_page
    page.advanced.setChecked(True)
    _type(qtbot, page.epochs, "25")
    _type(qtbot, page.batch, "16")
    _type(qtbot, page.lr, "2e-4")
    _type(qtbot, page.label_smoothing, "0.15")
    page.seed.clear()
    qtbot.keyClicks(page.seed, str(2**63 - 1) + "9")  # the extra digit would leave the range: refused
    qtbot.keyClick(page.seed, Qt.Key.Key_Return)
    page.head.setCurrentIndex(page.head.findData("mlp"))
    page.collect()
    config = window.state.config
    assert (config.epochs, config.batch_size, config.lr, config.label_smoothing) == (25, 16, 2e-4, 0.15)
    assert (config.seed, config.head) == (2**63 - 1, "mlp")
    assert {"epochs", "batch_size", "lr", "label_smoothing", "seed", "head"} <= page._chosen  # set by hand

    other = TrainConfig(epochs=7, batch_size=8, accumulate=4, lr=0.02, seed=5, head="linear",
                        schedule="two-phase", label_smoothing=0.1, weight_decay=0.0, window_seconds=2.5)
    page.settings.show(other)
    assert (page.epochs.value(), page.batch.value(), page.accumulate.value(), page.seed.value()) == (7, 8, 4, 5)
    assert page.lr.value() == pytest.approx(0.02) and page.label_smoothing.value() == pytest.approx(0.1)
    assert (page.head.currentData(), page.schedule.currentData()) == ("linear", "two-phase")
    assert page.window.value() == 2.5 and page.weight_decay.value() == 0.0
    assert page.settings.read(TrainConfig()) == TrainConfig(**{**TrainConfig().to_dict(), **{
        name: getattr(other, name) for name in page.settings.widgets}})


def test_pages_talk_through_the_state(window) -> None:
    """An edit is in state.config at once (no page copies fields into it later, over another page's edit), and
    a setting changed elsewhere and announced is shown, without counting as the user's choice here."""
    page = window.model_page
    page.epochs.setValue(12)
    assert window.state.config.epochs == 12
    window.state.config.batch_size = 64
    window.state.settings_changed.emit("batch_size")
    assert page.batch.value() == 64 and "batch_size" not in page._chosen


def test_settings_not_set_by_hand_follow_data_of_another_kind(window, qtbot, shapes_dir: Path, tmp_path: Path
                                                              ) -> None:
    """A photo project reopened, then sound: its epochs and learning rate were the photos' (the bug: "epochs
    carry over from a photo run to a sound run"); the batch size set by hand here stays."""
    from tlstudio.core.store.project import Project
    from tlstudio.demo_audio import make_sound_folder

    page = window.model_page
    photos = TrainConfig(data=str(shapes_dir), backbone="mobilenet_v3_small", epochs=3, lr=0.01)
    project = Project(data=str(shapes_dir), settings=photos.to_dict()).save(tmp_path / "photos")
    assert window.open_project(project)
    qtbot.waitUntil(lambda: window.state.spec is not None and bool(page.rows), timeout=60000)
    qtbot.waitUntil(lambda: getattr(page, "_current_key", ("",))[0] == "mobilenet_v3_small", timeout=60000)
    assert (page.epochs.value(), page.lr.value()) == (3, 0.01)  # the project's, for its own data
    assert page.window.isHidden()  # a sound setting: not shown for photos
    page.batch.setValue(16)  # by hand

    window.data_page.open_folder(make_sound_folder(tmp_path / "sounds", per_class=3, seed=3))
    qtbot.waitUntil(lambda: window.state.spec is not None and window.state.spec.modality == "audio", timeout=30000)
    qtbot.waitUntil(lambda: getattr(page, "_current_key", ("",))[0] == "yamnet", timeout=60000)
    assert page.selected_row()["name"] == "yamnet" and page.depth.value() == page.depth.maximum()
    assert (page.epochs.value(), page.lr.value(), page.batch.value()) == (10, 3e-3, 16)
    assert not page.window.isHidden()
    page.collect()
    config = window.state.config
    assert (config.backbone, config.unfreeze) == ("yamnet", str(page.depth.maximum()))
    assert (config.epochs, config.lr, config.batch_size) == (10, 3e-3, 16)


def test_the_train_pages_start_button_starts_a_run_when_clicked(window, qtbot, shapes_dir: Path) -> None:
    """clicked(bool) once reached start_training(start_from=False): "expected str, bytes or os.PathLike
    object, not bool". Only a click on the real button shows it."""
    open_folder(window, qtbot, shapes_dir)
    window.state.config.pretrained = "none"
    pick_backbone(window, "mobilenet_v3_small")
    qtbot.waitUntil(lambda: getattr(window.model_page, "_current_key", ("",))[0] == "mobilenet_v3_small",
                    timeout=60000)
    window.model_page.epochs.setValue(1)
    assert window.go_to_step(2)
    start = next(b for b in window.train_page.findChildren(QPushButton) if b.text() == "Start")
    assert start.isVisible() and start.isEnabled()
    with qtbot.waitSignal(window.train_page.finished, timeout=120000) as done:
        qtbot.mouseClick(start, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: not window.train_page.is_running(), timeout=30000)
    assert done.args[0]["status"] == "completed"
    assert not getattr(window, "last_error", None)
    assert window.state.config.start_from == ""
