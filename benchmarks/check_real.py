"""The core's promises, checked from the command line on real photos and recordings (not generated data).

Each check runs `tlstudio` as a user would, in separate processes, on the sets `benchmarks/data.py` lays out
(hymenoptera: real ants/bees photos; fsdd: real spoken digits), and prints one line per check:

  layout      train/ + test/ (no val/): validation drawn from train/, test/ scored apart (metrics test_accuracy)
  parity      phone photos (EXIF turns), transparent PNGs, 16-bit greyscale, palette, CMYK: the exported ONNX
              model run by its own predict.py gives the same top-3 as `tlstudio predict`
  resume      a two-phase run with light augmentation, killed with SIGKILL mid-run and resumed, against the
              same run never stopped: the largest difference in history.csv
  poison      real recordings plus a WAV with huge samples and one with NaN after 60 s: both skipped and
              named, the model finite; --lr nan refused (exit 2)
  one-writer  two trainings into one --out at once: exactly one exits 0, the other 5

Run: .venv/bin/python benchmarks/check_real.py [CHECK ...]   (after `benchmarks/data.py prepare hymenoptera fsdd`)
"""

from __future__ import annotations

import csv
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import data as bench_data

TLSTUDIO = [sys.executable, "-m", "tlstudio"]


def _photos() -> Path:
    return bench_data.prepare(bench_data.SETS["hymenoptera"], quiet=True)


def _tl(*args: str, **kw) -> subprocess.CompletedProcess:
    return subprocess.run([*TLSTUDIO, *args], capture_output=True, text=True, timeout=3600, **kw)


def check_layout(tmp: Path) -> str:
    root = tmp / "layout"
    root.mkdir()
    (root / "train").symlink_to(_photos() / "train")
    (root / "test").symlink_to(_photos() / "val")
    run = tmp / "layout-run"
    done = _tl("train", str(root), "--epochs", "3", "--out", str(run), "--quiet")
    assert done.returncode == 0, done.stdout + done.stderr
    metrics = json.loads((run / "metrics.json").read_text())
    dataset = json.loads((run / "dataset.json").read_text())
    classes = json.loads((run / "labels.json").read_text())["classes"]
    val_from_train = all("/train/" in s["path"] for s in dataset["val"])
    return (f"classes {classes}, {len(dataset['train'])} train / {len(dataset['val'])} val (all from train/: "
            f"{val_from_train}) / {len(dataset['test'])} test; val {metrics['val_accuracy']:.3f}, "
            f"test {metrics['test_accuracy']:.3f}")


def _odd_images(sources: list[Path], folder: Path) -> list[Path]:
    from PIL import Image

    folder.mkdir(parents=True)
    out = []
    for n, source in enumerate(sources):
        with Image.open(source) as image:
            rgb = image.convert("RGB")
        kind = n % 5
        if kind == 0:  # a phone photo stored sideways with an EXIF turn
            exif = Image.Exif()
            exif[0x0112] = (6, 8, 3)[n % 3]
            path = folder / f"phone {n}.jpg"
            rgb.save(path, exif=exif, quality=92)
        elif kind == 1:  # transparent left half
            rgba = rgb.convert("RGBA")
            alpha = Image.new("L", rgba.size, 255)
            alpha.paste(0, (0, 0, rgba.size[0] // 2, rgba.size[1]))
            rgba.putalpha(alpha)
            path = folder / f"transparent {n}.png"
            rgba.save(path)
        elif kind == 2:
            path = folder / f"sixteen-bit {n}.png"
            grey = np.asarray(rgb.convert("L"), dtype=np.uint16) * 257
            Image.fromarray(grey).save(path)
        elif kind == 3:
            path = folder / f"palette {n}.png"
            rgb.convert("P", palette=Image.Palette.ADAPTIVE).save(path)
        else:
            path = folder / f"cmyk {n}.jpg"
            rgb.convert("CMYK").save(path)
        out.append(path)
    return out


def check_parity(tmp: Path) -> str:
    run = tmp / "parity-run"
    done = _tl("train", str(_photos()), "--epochs", "3", "--out", str(run), "--quiet")
    assert done.returncode == 0, done.stdout + done.stderr
    sources = sorted((_photos() / "val" / "ants").iterdir())[:5] + sorted((_photos() / "val" / "bees").iterdir())[:5]
    files = _odd_images(sources, tmp / "odd")
    assert _tl("export", str(run), "--format", "onnx", "--out", str(tmp / "onnx")).returncode == 0
    studio_csv = tmp / "studio.csv"
    assert _tl("predict", str(run), *map(str, files), "--csv", str(studio_csv)).returncode == 0
    with open(studio_csv, newline="") as handle:
        studio = {row["path"]: [(row[f"label{i}"], float(row[f"probability{i}"])) for i in (1, 2)]
                  for row in csv.DictReader(handle)}
    snippet = subprocess.run([sys.executable, str(tmp / "onnx" / "predict.py"), *map(str, files)],
                             capture_output=True, text=True, env={"PATH": "/usr/bin:/bin"})
    assert snippet.returncode == 0, snippet.stderr
    disagree, worst = 0, 0.0
    for line in snippet.stdout.splitlines():
        path, rest = line.rsplit(": ", 1)
        exported = [(part.rsplit(" ", 1)[0], float(part.rsplit(" ", 1)[1])) for part in rest.split(", ")][:2]
        ours = studio[str(Path(path).resolve())] if str(Path(path).resolve()) in studio else studio[path]
        disagree += exported[0][0] != ours[0][0]
        worst = max(worst, *(abs(a[1] - b[1]) for a, b in zip(exported, ours, strict=True) if a[0] == b[0]))
    return (f"{len(files)} odd files (EXIF 6/8/3, RGBA, 16-bit, palette, CMYK): top-1 disagreements {disagree}, "
            f"largest probability difference {worst:.4f} (predict.py prints 3 decimals)")


def _history(run: Path) -> list[list[float]]:
    with open(run / "history.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    return [[float(row[k]) for k in ("train_loss", "train_acc", "val_loss", "val_acc")] for row in rows]


def check_resume(tmp: Path) -> str:
    flags = ["--schedule", "two-phase", "--warmup-epochs", "1", "--unfreeze", "1", "--augment", "light",
             "--epochs", "3", "--quiet"]
    whole = tmp / "whole"
    assert _tl("train", str(_photos()), "--out", str(whole), *flags).returncode == 0
    killed = tmp / "killed"
    process = subprocess.Popen([*TLSTUDIO, "train", str(_photos()), "--out", str(killed), *flags],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    history = killed / "history.csv"
    while process.poll() is None and not (history.is_file() and len(history.read_text().splitlines()) >= 2):
        time.sleep(0.2)
    time.sleep(5)  # into epoch 2: the first fine-tuning epoch, mid-phase
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    epochs_at_kill = len(_history(killed))
    resumed = _tl("train", "--resume", str(killed), "--quiet")
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    a, b = _history(whole), _history(killed)
    gap = max(abs(x - y) for ra, rb in zip(a, b, strict=True) for x, y in zip(ra, rb, strict=True))
    return (f"killed with SIGKILL after {epochs_at_kill} of 3 epochs (two-phase, light augmentation, real photos), "
            f"resumed: {len(b)} epochs; largest history difference vs never stopped {gap:.2e}")


def _wav(path: Path, samples: np.ndarray, rate: int = 8000) -> None:
    import soundfile

    soundfile.write(path, samples.astype(np.float32), rate, subtype="FLOAT")


def check_poison(tmp: Path) -> str:
    fsdd = bench_data.prepare(bench_data.SETS["fsdd"], quiet=True)
    root = tmp / "poisoned"
    for digit in ("0", "1", "2"):
        (root / digit).mkdir(parents=True)
        for source in sorted((fsdd / digit).iterdir())[:60]:
            shutil.copy(source, root / digit / source.name)
    huge = np.full(8000, 1e30)
    _wav(root / "1" / "1_poison_huge.wav", huge)
    late_nan = np.concatenate([0.1 * np.sin(np.arange(8000 * 61) / 5.0), np.full(800, np.nan)])
    _wav(root / "2" / "2_poison_nan.wav", late_nan)
    run = tmp / "poison-run"
    done = _tl("train", str(root), "--epochs", "2", "--out", str(run), "--quiet")
    assert done.returncode == 0, done.stdout + done.stderr
    skipped = (run / "skipped.tsv").read_text()
    named = [name for name in ("1_poison_huge.wav", "2_poison_nan.wav") if name in skipped]
    import torch

    state = torch.load(run / "model.pt", weights_only=True)
    tensors = [v for v in (state.get("state_dict", state) if isinstance(state, dict) else {}).values()
               if isinstance(v, torch.Tensor) and v.is_floating_point()]
    finite = all(bool(torch.isfinite(t).all()) for t in tensors)
    metrics = json.loads((run / "metrics.json").read_text())
    nan_lr = _tl("train", str(root), "--lr", "nan", "--out", str(tmp / "nan-run"), "--quiet")
    return (f"poisoned files skipped and named: {len(named)} of 2; model.pt finite: {finite} ({len(tensors)} "
            f"tensors); val {metrics['val_accuracy']:.3f}; --lr nan exit {nan_lr.returncode}, run folder left: "
            f"{(tmp / 'nan-run').exists()}")


def check_one_writer(tmp: Path) -> str:
    out = tmp / "shared-out"
    command = [*TLSTUDIO, "train", str(_photos()), "--epochs", "2", "--out", str(out), "--quiet"]
    first = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    second = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    codes = sorted([first.wait(), second.wait()])
    config = json.loads((out / "config.json").read_text())
    metrics = json.loads((out / "metrics.json").read_text())
    history = _history(out)
    agree = len(history) == metrics["epochs"] == config["epochs"]
    return f"exit codes {codes}; the winner's config, history and metrics agree: {agree}"


CHECKS = {"layout": check_layout, "parity": check_parity, "resume": check_resume, "poison": check_poison,
          "one-writer": check_one_writer}


def main() -> int:
    names = sys.argv[1:] or list(CHECKS)
    failed = 0
    with tempfile.TemporaryDirectory(prefix="tlstudio-check-") as tmp:
        for name in names:
            start = time.perf_counter()
            folder = Path(tmp) / name
            folder.mkdir()
            try:
                line = CHECKS[name](folder)
                print(f"{name:10} ok    {line} ({time.perf_counter() - start:.0f} s)", flush=True)
            except Exception as exc:  # one failed check must not hide the others
                failed += 1
                print(f"{name:10} FAIL  {type(exc).__name__}: {exc}", flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
