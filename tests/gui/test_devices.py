"""The device picker offers every GPU together where there are several, and such a run trains on processes
of its own that the Train page follows as it follows a run in the window's own thread."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.gui.helpers import open_folder, pick_backbone
from tlstudio.demo import make_image_folder
from tlstudio.gui.pages.model_page import chosen_device, device_choice

pytestmark = pytest.mark.gui


@pytest.fixture()
def two_gpus(monkeypatch):
    """What torch would report on a machine with two NVIDIA GPUs (none here)."""
    from tlstudio.core import devices

    found = [devices.DeviceInfo("cuda:0", "NVIDIA H200", 139.0), devices.DeviceInfo("cuda:1", "NVIDIA H200", 139.0),
             devices.DeviceInfo("cpu", "x86_64")]
    monkeypatch.setattr(devices, "available", lambda: found)


def test_two_gpus_offer_both_together(two_gpus, window, qtbot) -> None:
    picker = window.model_page.device
    qtbot.waitUntil(lambda: picker.count() > 1, timeout=60000)
    texts = [picker.itemText(i) for i in range(picker.count())]
    assert texts[1] == "All 2 GPUs together (2 processes, DistributedDataParallel)", texts
    assert "cuda:0 (NVIDIA H200, 139 GB)" in texts and "cuda:1 (NVIDIA H200, 139 GB)" in texts
    picker.setCurrentIndex(1)
    window.model_page.collect()
    assert (window.state.config.device, window.state.config.devices) == ("cuda", 2)
    picker.setCurrentIndex(picker.findData("cuda:1"))
    window.model_page.collect()
    assert (window.state.config.device, window.state.config.devices) == ("cuda:1", 1)
    assert chosen_device(device_choice("cuda", 4)) == ("cuda", 4) and chosen_device("auto") == ("auto", 1)


def test_a_run_on_two_processes_is_followed_from_the_window(window, qtbot, tmp_path: Path) -> None:
    folder = make_image_folder(tmp_path / "photos", classes=("circles", "squares"), per_class=10, size=(64, 48),
                               seed=4)
    open_folder(window, qtbot, folder)
    window.state.config.pretrained = "none"
    pick_backbone(window, "mobilenet_v3_small")
    qtbot.waitUntil(lambda: getattr(window.model_page, "_current_key", ("",))[0] == "mobilenet_v3_small",
                    timeout=60000)
    picker = window.model_page.device
    picker.addItem("2 CPU processes together", device_choice("cpu", 2))  # the GPU item's path, on CPUs here
    picker.setCurrentIndex(picker.count() - 1)
    window.model_page.epochs.setValue(2)
    with qtbot.waitSignal(window.train_page.finished, timeout=300000) as done:
        window.start_training()
        qtbot.waitUntil(lambda: window.train_page.is_running(), timeout=10000)
        assert not window.train_page.pause_button.isEnabled()  # processes are stopped, never paused
    qtbot.waitUntil(lambda: not window.train_page.is_running(), timeout=30000)
    metrics = done.args[0]
    assert metrics["status"] == "completed" and metrics["world_size"] == 2
    assert [e["epoch"] for e in window.train_page.plots.epochs] == [1, 2]  # the processes' events, drawn
    assert window.state.run_dir is not None and (Path(window.state.run_dir) / "model.pt").is_file()
