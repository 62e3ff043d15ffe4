"""Render every page of the studio to PNG, offscreen, after a real short training run on the demo data.

Used for the README's screenshots and for review (light and dark).
Run: QT_QPA_PLATFORM=offscreen .venv/bin/python scripts/render_pages.py [OUT_DIR]
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")


def wait(app, condition, timeout: float = 300.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError("the studio did not get there in time")
        app.processEvents()
        time.sleep(0.02)


def settle(app, rounds: int = 5) -> None:
    for _ in range(rounds):
        app.processEvents()
        time.sleep(0.06)


def main() -> None:
    out = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).resolve().parents[1] / "docs" / "screenshots"
    out.mkdir(parents=True, exist_ok=True)
    home = tempfile.mkdtemp(prefix="tlstudio-render-")
    os.environ.setdefault("TLSTUDIO_HOME", home)
    from PySide6.QtCore import QSettings

    QSettings.setDefaultFormat(QSettings.Format.IniFormat)
    QSettings.setPath(QSettings.Format.IniFormat, QSettings.Scope.UserScope, home)
    from tlstudio.gui.app import create_window
    from tlstudio.gui.pages.data_page import demo_folder
    from tlstudio.gui.style import apply_style

    app, window = create_window()
    window.resize(1280, 820)
    window.show()
    window.data_page.open_folder(demo_folder())
    wait(app, lambda: window.state.spec is not None and window.model_page.rows
         and hasattr(window.model_page, "_current_blocks"))
    window.data_page.class_pick.setCurrentIndex(1)
    wait(app, lambda: window.data_page.grid.thumbs.pending() == 0)
    app.processEvents()
    window.model_page.epochs.setValue(8)
    shots = {}
    for dark in (False, True):
        apply_style(app, dark)
        suffix = "-dark" if dark else ""
        for row, name in ((0, "data"), (1, "model")):
            window.steps.setCurrentRow(row)
            app.processEvents()
            window.model_page.depth.setValue(0 if row == 0 else 3)
            app.processEvents()
            shots[f"{name}{suffix}"] = window.grab()
    window.model_page.depth.setValue(0)
    window.start_training()
    wait(app, lambda: not window.state.training and window.state.run_dir is not None)
    window.model_page.depth.setValue(2)
    window.start_training()  # a second run beside the first: fine-tuning the top 2 blocks
    wait(app, lambda: not window.state.training and len(window.state.runs) == 2)
    for run in window.state.runs:  # the README shows successful runs only
        if run["metrics"].get("status") != "completed" or run["metrics"]["val_accuracy"] < 0.6:
            raise SystemExit(f"run {run['path']} did not succeed ({run['metrics'].get('val_accuracy')}): "
                             "not rendering screenshots from it")
    for dark in (False, True):  # the Train page as the second run ended: live curves, the first run dashed
        apply_style(app, dark)
        window.apply_plot_theme(dark)
        window.steps.setCurrentRow(2)
        settle(app)
        shots["train" + ("-dark" if dark else "")] = window.grab()
    apply_style(app, False)
    window.apply_plot_theme(False)
    demo = demo_folder()
    import numpy as np
    from PIL import Image

    stranger = Path(home) / "not-a-shape.png"  # something else entirely: the page should say "not sure"
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 255, (120, 160, 3), dtype=np.uint8)).save(stranger)
    window.try_page.predict([str(demo / "circles" / "circles_0001.jpg"), str(demo / "squares" / "squares_0002.jpg"),
                             str(demo / "triangles" / "triangles_0003.jpg"), str(stranger)])
    wait(app, lambda: window.try_page.card_count() == 4)
    wait(app, lambda: window.evaluate_page.gallery.thumbs.pending() == 0)
    window.check_transfer(window.state.project.runs[0])  # "Does transfer help?" on the first run
    wait(app, lambda: not window.state.training and len(window.state.runs) == 3)
    wait(app, lambda: window.steps.currentRow() == 5)
    scratch = window.state.runs[-1]  # a comparison: its accuracy may well be low, by design
    print(f"from scratch: {scratch['metrics']['val_accuracy']:.1%}")
    settle(app)
    shots["compare"] = window.grab()
    assert window.state.run_dir.resolve() == Path(window.state.project.runs[1]), "the twin is never the model"
    for dark in (False, True):
        apply_style(app, dark)
        window.apply_plot_theme(dark)
        suffix = "-dark" if dark else ""
        for row, name in ((3, "evaluate"), (4, "try")):
            window.steps.setCurrentRow(row)
            settle(app)
            shots[f"{name}{suffix}"] = window.grab()
    apply_style(app, False)
    window.apply_plot_theme(False)
    from tlstudio.demo_audio import make_speech_folder

    speech, _, _ = make_speech_folder(Path(home) / "speech", words=("yes", "no", "stop"), n_speakers=6, repeats=2)
    window.steps.setCurrentRow(0)
    window.data_page.open_folder(speech)
    wait(app, lambda: window.state.spec is not None and window.state.spec.modality == "audio")
    window.data_page.clips.setCurrentRow(3)
    wait(app, window.data_page.audio.rendered)
    for _ in range(5):
        app.processEvents()
        time.sleep(0.05)
    shots["data-sound"] = window.grab()
    window.steps.setCurrentRow(1)  # sound brings its own measured default: YAMNet, and why
    wait(app, lambda: getattr(window.model_page, "_current_key", ("",))[0] == "yamnet")
    settle(app)
    shots["model-sound"] = window.grab()
    for name, pixmap in shots.items():
        pixmap.save(str(out / f"{name}.png"))
    print(f"wrote {len(shots)} screenshots to {out}")
    window.close()


if __name__ == "__main__":
    main()
