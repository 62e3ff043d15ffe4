"""Relaunch with a saved project: seconds from a fresh process to a usable window (the last project's
classes and counts on the Data page, its thumbnails asked for), against a launch with no project measured in
the same run (issue 23, finding 18: 6.4-9.3 s with a 3,670-file project; target < 1.5 s).

Generates `--files` photos (5 classes, 320x240 JPEGs, about the size of the flowers set's) in a temporary
folder, opens it once in the window and saves the project, then launches the studio `--repeat` times as
`tlstudio` does (`reopen_last`) in fresh processes. Each prints: shown (the window painted once), usable
(the Data page's table filled), rescanned (the background check of the folder ended, if it ran).

    .venv/bin/python benchmarks/bench_relaunch.py [--files 3670] [--repeat 3]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

PRELUDE = """
import json, os, sys, time
started = time.perf_counter()
os.environ["QT_QPA_PLATFORM"] = "offscreen"
from PySide6.QtCore import QSettings
QSettings.setDefaultFormat(QSettings.Format.IniFormat)
QSettings.setPath(QSettings.Format.IniFormat, QSettings.Scope.UserScope, {settings!r})
from tlstudio.gui.app import create_window
app, window = create_window()
window.ask_before_closing = lambda: True
def wait(check, seconds=600):
    end = time.monotonic() + seconds
    while not check() and time.monotonic() < end:
        app.processEvents()
        time.sleep(0.002)
    return check()
"""

PRIME = PRELUDE + """
window.show()
window.data_page.open_folder(__import__("pathlib").Path({folder!r}))
assert wait(lambda: window.state.spec is not None)
wait(lambda: not (window.data_page.task and window.data_page.task.thread.isRunning()))
window.save_project(path=__import__("pathlib").Path({project!r}))
print(json.dumps({{"files": len(window.state.spec.train) + len(window.state.spec.val)}}))
sys.stdout.flush()
os._exit(0)
"""

LAUNCH = PRELUDE + """
try:
    from tlstudio.gui.app import start_up
except ImportError:  # the code before issue 23 (a baseline run with PYTHONPATH at an older checkout)
    def start_up(window):
        window.reopen_last()
window.show()
if {reopen}:
    start_up(window)  # as `tlstudio` does: the last project, shown from memory while the folder is read again
app.processEvents()
shown = time.perf_counter() - started
reopened = window.state.project.path.endswith("p.tlsproj")
usable_check = (lambda: window.data_page.table.rowCount() > 0) if reopened else (lambda: True)
assert wait(usable_check), "the Data page never showed the project"
app.processEvents()
usable = time.perf_counter() - started
task = window.data_page.task
wait(lambda: task is None or not task.thread.isRunning())
app.processEvents()
rescanned = time.perf_counter() - started
print(json.dumps({{"shown_s": shown, "usable_s": usable, "rescanned_s": rescanned, "reopened": reopened,
                  "rows": window.data_page.table.rowCount(), "summary": window.data_page.summary.text()}}))
sys.stdout.flush()
os._exit(0)
"""


def generate(folder: Path, files: int, classes: int = 5) -> None:
    import random

    from PIL import Image

    rng = random.Random(0)
    for index in range(files):
        target = folder / f"class{index % classes}"
        target.mkdir(parents=True, exist_ok=True)
        image = Image.effect_noise((320, 240), 40 + rng.random() * 40).convert("RGB")
        image.save(target / f"{index:05d}.jpg", quality=85)


def child(code: str, home: Path) -> dict:
    env = {**os.environ, "TLSTUDIO_HOME": str(home)}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=900, env=env)
    if done.returncode != 0:
        raise SystemExit(done.stderr[-3000:])
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=3670)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        folder, home, settings = root / "photos", root / "home", str(root / "settings")
        tick = time.perf_counter()
        generate(folder, args.files)
        print(f"generated {args.files} photos in {time.perf_counter() - tick:.0f} s", flush=True)
        primed = child(PRIME.format(settings=settings, folder=str(folder), project=str(root / "p.tlsproj")), home)
        print(f"project saved with {primed['files']} files", flush=True)
        empty = [child(LAUNCH.format(settings=str(root / "none"), reopen=False), home) for _ in range(args.repeat)]
        again = [child(LAUNCH.format(settings=settings, reopen=True), home) for _ in range(args.repeat)]
    assert all(run["reopened"] and run["rows"] == 5 for run in again), again
    reference = statistics.median(run["usable_s"] for run in empty)
    usable = statistics.median(run["usable_s"] for run in again)
    rescanned = statistics.median(run["rescanned_s"] for run in again)
    print(f"\nlaunch with no project (reference): {reference:.2f} s to a usable window (median of {args.repeat})")
    print(f"relaunch with a {primed['files']}-file project: {usable:.2f} s to a usable window "
          f"(ratio {usable / reference:.2f}x the empty launch), background rescan done at {rescanned:.2f} s")
    print("each relaunch: " + ", ".join(f"{run['usable_s']:.2f}/{run['rescanned_s']:.2f} s" for run in again))
    print(f"Data page then reads: {again[-1]['summary']}")
    print(f"target < 1.5 s: {'met' if usable < 1.5 else 'NOT met'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
