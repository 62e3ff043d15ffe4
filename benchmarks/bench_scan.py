"""A folder of 100,000 files: how long the scan takes per 10,000 files and how much memory it holds.

Generates small JPEGs (10 classes, `--files` in all) in a temporary folder (or `--folder`, kept), then
scans it in a fresh process as `tlstudio train` does (every file opened and checked), with progress
reports counted. Prints seconds per 10,000 files, peak RSS, and RSS per 1,000 files against a
1/10 folder scanned in the same run.

    .venv/bin/python benchmarks/bench_scan.py [--files 100000]
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


def generate(folder: Path, files: int, classes: int = 10) -> None:
    from PIL import Image

    tick = time.perf_counter()
    colours = [(25 * i, 255 - 25 * i, (97 * i) % 256) for i in range(classes)]
    for index in range(files):
        label = index % classes
        target = folder / f"class{label}"
        target.mkdir(parents=True, exist_ok=True)
        Image.new("RGB", (32, 32), colours[label]).save(target / f"{index:06d}.jpg", quality=80)
    print(f"generated {files} files in {time.perf_counter() - tick:.0f} s", flush=True)


def scanned(folder: Path) -> dict:
    done = subprocess.run([sys.executable, "-c", SCAN.format(folder=str(folder))], capture_output=True,
                          text=True, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=100_000)
    parser.add_argument("--folder", help="generate here (kept) instead of a temporary folder")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(args.folder) if args.folder else Path(tmp)
        small, large = root / "small", root / "large"
        if not large.is_dir():
            generate(small, args.files // 10)
            generate(large, args.files)
        runs = {name: scanned(path) for name, path in (("small", small), ("large", large))}
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
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
