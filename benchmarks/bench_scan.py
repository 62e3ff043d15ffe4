"""A folder of 100,000 files: how long the scan takes per 10,000 files, how much memory it holds, and
whether the window stays responsive while it scans, lists and shows them.

Generates small JPEGs (10 classes, `--files` in all, `--bad` of them corrupt so the problems list is
long) in a temporary folder (or `--folder`, kept), then scans it in a fresh process as `tlstudio train`
does (every file opened and checked), with progress reports counted. Prints seconds per 10,000 files,
peak RSS, and RSS per 1,000 files against a 1/10 folder scanned in the same run. Then opens each folder
in the window (offscreen) and measures the GUI thread's stalls (a 10 ms timer's gaps, p99 and max) while
it scans, then from the scan's delivery through the page's render, every class's thumbnails and the grid
scrolled to its end; and the window process's peak RSS.

    .venv/bin/python benchmarks/bench_scan.py [--files 100000] [--bad 2000]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SCAN = """
import resource, time, json
from tlstudio.core.data.scan import scan
reports = []
tick = time.perf_counter()
spec = scan({folder!r}, check_file="auto", progress=lambda *a: reports.append(a))
seconds = time.perf_counter() - tick
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps({{"seconds": seconds, "files": len(spec.train) + len(spec.val), "reports": len(reports),
                  "skipped": len(spec.skipped), "peak_rss_mb": peak}}))
"""


WINDOW = """
import json, os, time
from pathlib import Path
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
from PySide6.QtCore import QTimer
from tlstudio.gui.app import create_window
app, window = create_window()
window.show()
phase = ["settle"]
gaps = {{"scan": [], "after": []}}
last = [time.perf_counter()]
def tick():
    now = time.perf_counter()
    if phase[0] in gaps:
        gaps[phase[0]].append(now - last[0])
    last[0] = now
timer = QTimer()
timer.setInterval(10)
timer.timeout.connect(tick)
timer.start()
def spin(seconds):
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        app.processEvents()
        time.sleep(0.001)
spin(5.0)  # the window's own start (torch loading in threads) is the time-to-window row's business
phase[0] = "scan"
start = time.perf_counter()
page = window.data_page
task = page.open_folder(Path({folder!r}))
# runs right after the page's own slot (connected first): the gap that spans the render counts as "after"
task.finished.connect(lambda *_: phase.__setitem__(0, "after"))
deadline = time.monotonic() + 900
while window.state.spec is None and time.monotonic() < deadline:
    app.processEvents()
    time.sleep(0.001)
scanned = time.perf_counter() - start
spin(1.0)
for index in range(page.class_pick.count()):  # every class's thumbnails, then the grid scrolled to its end
    page.class_pick.setCurrentIndex(index)
    spin(0.2)
bar = page.grid.verticalScrollBar()
for step in range(20):
    bar.setValue(bar.maximum() * (step + 1) // 20)
    spin(0.1)
spin(1.0)
timer.stop()
def stats(values):
    values = sorted(values)
    return 1000 * values[int(0.99 * (len(values) - 1))], 1000 * values[-1]
with open("/proc/self/status") as status:
    peak = next(int(line.split()[1]) for line in status if line.startswith("VmHWM")) / 1024
(scan_p99, scan_max), (after_p99, after_max) = stats(gaps["scan"]), stats(gaps["after"])
print(json.dumps({{"scanned_s": scanned, "scan_p99_ms": scan_p99, "scan_max_ms": scan_max,
                  "after_p99_ms": after_p99, "after_max_ms": after_max, "problems": page.problems.count(),
                  "files": len(window.state.spec.train) + len(window.state.spec.val), "peak_rss_mb": peak}}))
os._exit(0)  # closing would ask whether to save the project
"""


def generate(folder: Path, files: int, classes: int = 10, bad: int = 0) -> None:
    from PIL import Image

    tick = time.perf_counter()
    colours = [(25 * i, 255 - 25 * i, (97 * i) % 256) for i in range(classes)]
    for index in range(files):
        label = index % classes
        target = folder / f"class{label}"
        target.mkdir(parents=True, exist_ok=True)
        if index % max(files // max(bad, 1), 1) == 1 and bad:
            (target / f"{index:06d}.jpg").write_bytes(b"not a JPEG")  # the scan names it, once
            continue
        Image.new("RGB", (32, 32), colours[label]).save(target / f"{index:06d}.jpg", quality=80)
    print(f"generated {files} files in {time.perf_counter() - tick:.0f} s", flush=True)


def scanned(folder: Path) -> dict:
    done = subprocess.run([sys.executable, "-c", SCAN.format(folder=str(folder))], capture_output=True,
                          text=True, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def windowed(folder: Path) -> dict:
    done = subprocess.run([sys.executable, "-c", WINDOW.format(folder=str(folder))], capture_output=True,
                          text=True, check=True, timeout=1200)
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=100_000)
    parser.add_argument("--bad", type=int, default=2000, help="corrupt files among them (the problems list)")
    parser.add_argument("--folder", help="generate here (kept) instead of a temporary folder")
    parser.add_argument("--no-window", action="store_true", help="the scan alone")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(args.folder) if args.folder else Path(tmp)
        small, large = root / "small", root / "large"
        if not large.is_dir():
            generate(small, args.files // 10, bad=args.bad // 10)
            generate(large, args.files, bad=args.bad)
        runs = {name: scanned(path) for name, path in (("small", small), ("large", large))}
        windows = {} if args.no_window else {name: windowed(path) for name, path in (("small", small),
                                                                                      ("large", large))}
    s, big = runs["small"], runs["large"]
    print(f"| scan | {big['files']} files | {s['files']} files | ratio |")
    print("|---|---|---|---|")
    per_10k = {k: 10_000 * r["seconds"] / r["files"] for k, r in runs.items()}
    print(f"| seconds per 10,000 files | {per_10k['large']:.2f} | {per_10k['small']:.2f} | "
          f"**{per_10k['large'] / per_10k['small']:.2f}** |")
    print(f"| peak RSS (MB) | {big['peak_rss_mb']:.0f} | {s['peak_rss_mb']:.0f} | "
          f"**{big['peak_rss_mb'] / s['peak_rss_mb']:.2f}** |")
    added = (big["peak_rss_mb"] - s["peak_rss_mb"]) / ((big["files"] - s["files"]) / 1000)
    print(f"| RSS added per 1,000 files (MB) | {added:.2f} | - | - |")
    print(f"| progress reports | {big['reports']} | {s['reports']} | - |")
    if windows:
        w, small_w = windows["large"], windows["small"]
        print(f"| window: click to a rendered Data page (s) | {w['scanned_s']:.1f} | {small_w['scanned_s']:.1f} | "
              f"**{w['scanned_s'] / small_w['scanned_s']:.2f}** |")
        for key, name in (("scan_p99_ms", "p99 while scanning"), ("scan_max_ms", "max while scanning"),
                          ("after_p99_ms", "p99 after: render, every class, grid scrolled"),
                          ("after_max_ms", "max after: render, every class, grid scrolled")):
            print(f"| window: GUI thread stall, {name} (ms) | "
                  f"{w[key]:.0f} | {small_w[key]:.0f} | **{w[key] / small_w[key]:.2f}** |")
        print(f"| window: peak RSS (MB) | {w['peak_rss_mb']:.0f} | {small_w['peak_rss_mb']:.0f} | "
              f"**{w['peak_rss_mb'] / small_w['peak_rss_mb']:.2f}** |")
        print(f"| window: problems listed | {w['problems']} | {small_w['problems']} | - |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
