"""The rest of the window's buttons, clicked as a user clicks them (issue 23): Cancel of a long scan; the
weights' Download, its Cancel, a damaged download and a damaged import (served by a local HTTP server: no
network is needed, and nothing is ever placed as pretrained weights); the map from the Data page; Evaluate on
another folder; Continue on new data; the learning-rate finder's Close."""

from __future__ import annotations

import http.server
import shutil
import threading
import time
from pathlib import Path

import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QFileDialog

from tests.gui.helpers import train_tiny
from tests.gui.walk import click, go_to_step

pytestmark = pytest.mark.gui


class _SlowWeights(http.server.BaseHTTPRequestHandler):
    """8 MB of bytes that are not the weights: slowly (64 KB every 50 ms) unless the path asks for speed."""

    def do_GET(self) -> None:
        size = 8 << 20
        self.send_response(200)
        self.send_header("Content-Length", str(size))
        self.end_headers()
        slow = "/slow/" in self.path
        chunk = b"\0" * (64 << 10)
        try:
            for _ in range(size // len(chunk)):
                self.wfile.write(chunk)
                if slow:
                    time.sleep(0.05)
        except (BrokenPipeError, ConnectionResetError):
            pass

    def log_message(self, *_args) -> None:
        pass


@pytest.fixture()
def weights_server(monkeypatch):
    from tlstudio.core.models.catalogue import BackboneEntry

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _SlowWeights)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    real = BackboneEntry.weights_url.fget
    mode = {"speed": "slow"}
    monkeypatch.setattr(BackboneEntry, "weights_url", property(
        lambda self: f"http://127.0.0.1:{server.server_port}/{mode['speed']}/{real(self).rsplit('/', 1)[-1]}"))
    yield mode
    server.shutdown()


def test_a_long_scan_and_a_weights_download_can_be_cancelled(window, qtbot, tmp_path: Path, monkeypatch,
                                                              weights_server) -> None:
    from PIL import Image

    big = tmp_path / "big"
    for index in range(2400):
        (big / f"class{index % 3}").mkdir(parents=True, exist_ok=True)
        Image.new("RGB", (24, 24), (index % 250, 90, 30)).save(big / f"class{index % 3}" / f"{index:05d}.png")
    monkeypatch.setattr(QFileDialog, "getExistingDirectory", lambda *_a, **_k: str(big))
    page = window.data_page
    click(qtbot, page.choose)
    assert page.progress.isVisible() and page.progress.cancel.isVisible()
    cancelled: list[int] = []
    seen: list[str] = []

    def cancel_at_first_count(done: int, _total: int) -> None:
        if not cancelled and done > 0:
            cancelled.append(done)
            seen.append(page.progress.bar.text())
            click(qtbot, page.progress.cancel)

    page.task.progress.connect(cancel_at_first_count)  # relayed on the GUI thread, as the page gets it
    qtbot.waitUntil(lambda: page.path_label.text().endswith(": Cancelled."), timeout=60000)
    qtbot.waitUntil(lambda: not page.progress.isVisible(), timeout=10000)
    assert cancelled and window.state.spec is None
    assert seen[0].startswith("Scanning… ") and " / 2400 files · " in seen[0]  # counts and the time left

    # the weights: a download the user stops, one that arrives damaged, an import of a damaged file
    click(qtbot, page.demo)
    qtbot.waitUntil(lambda: window.state.spec is not None, timeout=60000)
    go_to_step(window, qtbot, "Model")
    model = window.model_page
    qtbot.waitUntil(lambda: bool(model.rows), timeout=120000)
    table = model.table
    (row,) = [r for r in range(table.rowCount()) if table.item(r, 0).text() == "mobilenet_v3_small"]
    qtbot.mouseClick(table.viewport(), Qt.MouseButton.LeftButton, pos=table.visualItemRect(table.item(row, 0)).center())
    panel = model.weights
    qtbot.waitUntil(lambda: "not here yet" in panel.label.text(), timeout=30000)
    click(qtbot, panel.download)
    qtbot.waitUntil(lambda: panel.progress.bar.value() > 0, timeout=30000)
    assert panel.progress.cancel.isVisible() and not panel.download.isEnabled()
    assert " / 8 MB · " in panel.progress.bar.text()  # "Downloading the mobilenet_v3_small weights… 1 / 8 MB · ETA"
    click(qtbot, panel.progress.cancel)
    qtbot.waitUntil(lambda: not panel.progress.isVisible() and panel.download.isEnabled(), timeout=30000)
    assert window.last_error[0] == "Download cancelled." and "not here" in panel.label.text()
    weights_server["speed"] = "fast"
    click(qtbot, panel.download)
    qtbot.waitUntil(lambda: "checksum" in window.last_error[0], timeout=60000)
    assert "download failed" in panel.label.text()
    damaged = tmp_path / "mobilenet_v3_small.pth"
    damaged.write_bytes(b"these are not weights")
    monkeypatch.setattr(QFileDialog, "getOpenFileName", lambda *_a, **_k: (str(damaged), ""))
    window.last_error = ("", "")
    click(qtbot, panel.import_button)
    qtbot.waitUntil(lambda: bool(window.last_error[0]), timeout=60000)
    assert "Traceback" not in window.last_error[0] and "not here" in panel.label.text()


def test_a_trained_model_maps_evaluates_another_folder_and_learns_new_data(window, qtbot, shapes_dir: Path,
                                                                            tmp_path: Path, monkeypatch) -> None:
    window.resize(1440, 900)
    train_tiny(window, qtbot, shapes_dir)
    go_to_step(window, qtbot, "Data")
    click(qtbot, window.data_page.map_button)
    qtbot.waitUntil(lambda: window.map_dialog.isVisible(), timeout=10000)
    window.map_dialog.close()
    # Evaluate on another folder with the same classes
    drift = tmp_path / "drift"
    shutil.copytree(shapes_dir, drift)
    monkeypatch.setattr(QFileDialog, "getExistingDirectory", lambda *_a, **_k: str(drift))
    go_to_step(window, qtbot, "Evaluate")
    with qtbot.waitSignal(window.evaluate_page.evaluated, timeout=180000) as evaluated:
        click(qtbot, window.evaluate_page.other)
    assert evaluated.args[0]["plain"]["files"] == 72 and "drift" in window.evaluate_page.headline.text()
    # the learning-rate finder, closed without using its suggestion
    go_to_step(window, qtbot, "Model")
    model = window.model_page
    rate = model.lr.value()
    click(qtbot, model.lr_find)
    qtbot.waitUntil(lambda: getattr(model, "lr_dialog", None) is not None and model.lr_dialog.isVisible(),
                    timeout=180000)
    click(qtbot, model.lr_dialog.close_button)
    assert not model.lr_dialog.isVisible() and model.lr.value() == rate
    # Continue on new data: a folder with one new class
    new_data = tmp_path / "new data"
    shutil.copytree(shapes_dir / "circles", new_data / "ovals")
    monkeypatch.setattr(QFileDialog, "getExistingDirectory", lambda *_a, **_k: str(new_data))
    go_to_step(window, qtbot, "Train")
    with qtbot.waitSignal(window.train_page.finished, timeout=300000) as finished:
        click(qtbot, window.train_page.more_data_button)
    metrics = finished.args[0]
    assert metrics["status"] == "completed" and "ovals" in metrics["per_class"]
