"""One command, one table: how close the studio runs to what this machine allows, each row a ratio against
a reference measured in the same run (issue 13).

Rows:
  - extraction: the engine's embedding pass (decode, preprocess, batch, forward) vs the pure forward
    limit (the same model and batch on tensors already in memory);
  - fine-tune: the engine's full path (decode, light augmentation, forward, backward, AdamW step) vs the
    pure train-step limit (the same model, depth, batch and optimiser on tensors in memory);
  - decoding: the studio's image dataset (decode + resize + crop + normalise) vs raw PIL (open, RGB, resize);
  - frozen run: 20 epochs vs 1 epoch of the fast path (cold cache each): extra epochs should cost ~nothing;
    and 10 epochs vs the PyTorch tutorial's loop that runs the frozen backbone every epoch
    (benchmarks/naive_baseline.py --no-cache-features, its batch of 4 and its augmentation);
  - scale: 6,000 vs 400 generated photos, frozen, 1 epoch, each in its own process: peak RSS ratio,
    seconds-per-image ratio, and RSS added per 1,000 files (memory flat, time linear in the files);
  - GUI stall: the window's thread during a fine-tune started from the window: the longest gaps between
    ticks of a 10 ms timer (p99 and max), against the timer's own period;
  - time to window: a fresh process until the main window is shown.
Real photos: the hymenoptera set prepared by benchmarks/data.py (ants/bees, never in the repository).

    .venv/bin/python benchmarks/run_all.py [--quick] [--markdown benchmarks/RESULTS.md]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))


def _photos(limit: int) -> list[str]:
    import data

    folder = data.prepare(data.SETS["hymenoptera"], quiet=True)
    files = sorted(str(p) for p in folder.rglob("*.jpg"))
    return files[:limit]


def extraction_ratio(files: list[str], batch: int = 32) -> dict:
    import torch

    from tlstudio.core.control import Control
    from tlstudio.core.data.loaders import auto_workers, make_loader
    from tlstudio.core.data.pipelines import ImagePipeline
    from tlstudio.core.data.spec import Sample
    from tlstudio.core.models.registry import get_entry
    from tlstudio.core.models.transfer_model import build_model
    from tlstudio.core.models.weights import pretrained_state
    from tlstudio.core.training.embedding import embed
    from tlstudio.core.training.feature_cache import Bucket

    entry = get_entry("mobilenet_v2")
    model = build_model(entry, 2, "linear", pretrained_state(entry, "imagenet")).eval()
    model.to(memory_format=torch.channels_last)
    pipeline = ImagePipeline(entry.preprocess())
    samples = [Sample(f, 0) for f in files]
    device = torch.device("cpu")
    workers = auto_workers(len(samples), -1)
    tick = time.perf_counter()
    embed(model, samples, lambda subset: make_loader(pipeline.eval_dataset(subset), batch, workers, device), device,
          Bucket(None, {}), Control())
    studio = len(files) / (time.perf_counter() - tick)
    crop = pipeline.preprocess.crop
    tensors = torch.randn(batch, 3, crop, crop).contiguous(memory_format=torch.channels_last)
    with torch.inference_mode():
        model.features(tensors)  # warm-up
        rounds = max(1, len(files) // batch)
        tick = time.perf_counter()
        for _ in range(rounds):
            model.features(tensors)
        limit = rounds * batch / (time.perf_counter() - tick)
    return {"row": "extraction (img/s)", "studio": studio, "reference": limit, "ratio": studio / limit,
            "reference_is": "pure forward on tensors in memory", "target": ">= 0.90"}


def fine_tune_ratio(folder: Path, batch: int = 32, unfreeze: str = "all") -> dict:
    """Images per second of the training steps of one fine-tuning epoch (after its first batch, which
    starts the loader), against forward + backward + AdamW on tensors already in memory."""
    import torch

    from tlstudio.core.data.scan import scan
    from tlstudio.core.models import freezing
    from tlstudio.core.models.registry import get_entry
    from tlstudio.core.models.transfer_model import build_model
    from tlstudio.core.models.weights import pretrained_state
    from tlstudio.core.store.runs import RunDir
    from tlstudio.core.training import engine
    from tlstudio.core.training.config import TrainConfig
    from tlstudio.core.training.events import BatchEnd

    spec = scan(str(folder), check_file="auto")
    config = TrainConfig(data=str(folder), backbone="mobilenet_v2", epochs=1, unfreeze=unfreeze, batch_size=batch,
                         device="cpu")
    ticks: list[float] = []

    def on_event(event) -> None:
        if isinstance(event, BatchEnd):
            ticks.append(time.perf_counter())

    with tempfile.TemporaryDirectory() as out:
        engine.train(spec, config, RunDir.create(Path(out) / "run", config.backbone), on_event)
    studio = (len(ticks) - 1) * batch / (ticks[-1] - ticks[0])
    entry = get_entry("mobilenet_v2")
    model = build_model(entry, len(spec.classes), "linear", pretrained_state(entry, "imagenet"))
    model.to(memory_format=torch.channels_last)
    freezing.apply(model, freezing.parse_unfreeze(unfreeze, len(model.blocks)))
    optimizer = torch.optim.AdamW(freezing.param_groups(model, 3e-3, 3e-4, 1e-4))
    crop = entry.preprocess().crop
    inputs = torch.randn(batch, 3, crop, crop).contiguous(memory_format=torch.channels_last)
    labels = torch.randint(0, len(spec.classes), (batch,))
    model.train()

    def step() -> None:
        loss = torch.nn.functional.cross_entropy(model(inputs), labels)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    step()  # warm-up
    rounds = max(2, len(ticks) - 1)
    tick = time.perf_counter()
    for _ in range(rounds):
        step()
    limit = rounds * batch / (time.perf_counter() - tick)
    return {"row": f"fine-tune, unfreeze {unfreeze} (img/s)", "studio": studio, "reference": limit,
            "ratio": studio / limit, "reference_is": "pure train step on tensors in memory", "target": ">= 0.85"}


def decoding_ratio(files: list[str]) -> dict:
    from PIL import Image

    from tlstudio.core.data.pipelines import ImagePipeline
    from tlstudio.core.data.spec import Sample
    from tlstudio.core.models.registry import get_entry

    dataset = ImagePipeline(get_entry("mobilenet_v2").preprocess()).eval_dataset([Sample(f, 0) for f in files])
    tick = time.perf_counter()
    for i in range(len(dataset)):
        dataset[i]
    studio = len(files) / (time.perf_counter() - tick)
    tick = time.perf_counter()
    for f in files:
        with Image.open(f) as image:
            image.convert("RGB").resize((224, 224))
    raw = len(files) / (time.perf_counter() - tick)
    return {"row": "decode + preprocess (img/s)", "studio": studio, "reference": raw, "ratio": studio / raw,
            "reference_is": "raw PIL open + RGB + resize", "target": "~1 (full-quality decode, as exports see it)"}


PEAK_RSS = """
def _peak_rss_mb():
    # VmHWM: this process's own high-water mark. ru_maxrss would not do: Linux carries the forked parent's
    # size over exec, so every child of a big benchmark process would report at least the parent's RSS.
    try:
        with open("/proc/self/status") as status:
            return next(int(line.split()[1]) for line in status if line.startswith("VmHWM")) / 1024
    except (OSError, StopIteration):
        import resource, sys
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return peak / 2**20 if sys.platform == "darwin" else peak / 1024
"""


ANON_SAMPLER = """
import threading as _threading, time as _time
_anon = [0.0]
def _sample_anon():
    # RssAnon: the process's own memory. VmHWM also counts mapped files' pages (the mapped embeddings),
    # which are page cache the system takes back under pressure; sampled every 20 ms (a floor on the peak)
    while True:
        try:
            with open("/proc/self/status") as status:
                value = next(int(line.split()[1]) for line in status if line.startswith("RssAnon")) / 1024
            _anon[0] = max(_anon[0], value)
        except (OSError, StopIteration):
            return
        _time.sleep(0.02)
_threading.Thread(target=_sample_anon, daemon=True).start()
"""


def _child(code: str, env: dict) -> dict:
    """Run `code` in a fresh interpreter; it prints one JSON line, with its peak RSS (and, on Linux, its
    peak anonymous memory) added."""
    wrapped = (ANON_SAMPLER + code + PEAK_RSS + "\nimport json as _j\n"
               "print(_j.dumps({**RESULT, 'peak_rss_mb': _peak_rss_mb(), 'peak_anon_mb': _anon[0]}))\n")
    out = subprocess.run([sys.executable, "-c", wrapped], capture_output=True, text=True, env=env, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


TRAIN = """
import time
from tlstudio.core.data.scan import scan
from tlstudio.core.store.runs import RunDir
from tlstudio.core.training import engine
from tlstudio.core.training.config import TrainConfig
spec = scan({data!r}, check_file="auto")
config = TrainConfig(data={data!r}, backbone="mobilenet_v2", epochs={epochs}, cache_features=False)
tick = time.perf_counter()
metrics = engine.train(spec, config, RunDir.create({out!r}, config.backbone), lambda _e: None)
RESULT = {{"seconds": time.perf_counter() - tick, "files": len(spec.train) + len(spec.val),
          "val_accuracy": metrics["val_accuracy"]}}
"""


def frozen_epochs_ratio(folder: Path, tmp: Path, env: dict) -> dict:
    one = _child(TRAIN.format(data=str(folder), epochs=1, out=str(tmp / "e1")), env)
    many = _child(TRAIN.format(data=str(folder), epochs=20, out=str(tmp / "e20")), env)
    return {"row": "frozen run, 20 epochs vs 1 (s)", "studio": many["seconds"], "reference": one["seconds"],
            "ratio": many["seconds"] / one["seconds"], "reference_is": "the same run, 1 epoch", "target": "<= 1.5"}


def tutorial_ratio(folder: Path, tmp: Path, env: dict, epochs: int = 10) -> dict:
    """The studio's frozen run against the PyTorch tutorial's loop (the backbone runs every epoch)."""
    studio = _child(TRAIN.format(data=str(folder), epochs=epochs, out=str(tmp / "tutorial-studio")), env)
    out = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "naive_baseline.py"), "--train",
                          str(folder / "train"), "--val", str(folder / "val"), "--kind", "photo", "--epochs",
                          str(epochs), "--no-cache-features", "--json"], capture_output=True, text=True, env=env,
                         check=True)
    tutorial = json.loads(out.stdout.strip().splitlines()[-1])
    seconds = tutorial["seconds"]
    return {"row": f"frozen run, {epochs} epochs (s)", "studio": studio["seconds"], "reference": seconds,
            "ratio": studio["seconds"] / seconds,
            "reference_is": f"tutorial loop, backbone every epoch; val {tutorial['val_accuracy']:.3f} "
                            f"vs studio {studio['val_accuracy']:.3f}",
            "target": "< 1"}


def scale_ratios(tmp: Path, env: dict, small: int, large: int) -> list[dict]:
    from tlstudio.demo import make_image_folder

    runs = {}
    for n in (small, large):
        folder = make_image_folder(tmp / f"gen{n}", classes=("circles", "squares"), per_class=n // 2,
                                   size=(160, 120), seed=5)
        runs[n] = _child(TRAIN.format(data=str(folder), epochs=1, out=str(tmp / f"run{n}")), env)
    per_image = {n: r["seconds"] / r["files"] for n, r in runs.items()}
    return [
        {"row": f"peak RSS, {large} vs {small} photos (MB)", "studio": runs[large]["peak_rss_mb"],
         "reference": runs[small]["peak_rss_mb"], "ratio": runs[large]["peak_rss_mb"] / runs[small]["peak_rss_mb"],
         "reference_is": f"{small} photos", "target": "<= 1.25"},
        {"row": f"seconds per photo, {large} vs {small}", "studio": per_image[large], "reference": per_image[small],
         "ratio": per_image[large] / per_image[small], "reference_is": f"{small} photos", "target": "<= 1.25"},
        {"row": "peak RSS added per 1,000 files (MB)",
         "studio": (runs[large]["peak_rss_mb"] - runs[small]["peak_rss_mb"]) / ((large - small) / 1000),
         "reference": runs[small]["peak_rss_mb"],
         "ratio": (runs[large]["peak_rss_mb"] - runs[small]["peak_rss_mb"]) / ((large - small) / 1000)
         / runs[small]["peak_rss_mb"], "reference_is": f"the whole peak RSS at {small} photos", "target": "~0 (flat)"},
        {"row": "peak anonymous memory added per 1,000 files (MB)",
         "studio": (runs[large]["peak_anon_mb"] - runs[small]["peak_anon_mb"]) / ((large - small) / 1000),
         "reference": runs[small]["peak_anon_mb"],
         "ratio": (runs[large]["peak_anon_mb"] - runs[small]["peak_anon_mb"]) / ((large - small) / 1000)
         / runs[small]["peak_anon_mb"], "reference_is": f"the whole peak (RssAnon) at {small} photos",
         "target": "~0 (flat; mapped embeddings are page cache, not counted)"},
    ]


STALLS = """
import os, time
from pathlib import Path
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
from PySide6.QtCore import QTimer
from tlstudio.gui.app import create_window
app, window = create_window()
window.show()
window.data_page.open_folder(Path({data!r}))
deadline = time.monotonic() + 120
while not (window.state.spec is not None and window.model_page.rows
           and hasattr(window.model_page, "_current_blocks")) and time.monotonic() < deadline:
    app.processEvents()
    time.sleep(0.01)
names = [row["name"] for row in window.model_page.rows]
window.model_page.table.selectRow(names.index("mobilenet_v2"))
deadline = time.monotonic() + 60
while getattr(window.model_page, "_current_key", ("",))[0] != "mobilenet_v2" and time.monotonic() < deadline:
    app.processEvents()
    time.sleep(0.01)
window.model_page.depth.setValue(1)
window.model_page.epochs.setValue({epochs})
ticks = []
timer = QTimer()
timer.setInterval(10)
timer.timeout.connect(lambda: ticks.append(time.perf_counter()))
errors = []
window.train_page.error.connect(lambda message, hint: errors.append(message))
timer.start()
window.start_training()
deadline = time.monotonic() + 600
while window.train_page.is_running() and not errors and time.monotonic() < deadline:
    app.processEvents()  # the window's loop, as app.exec() runs it (a 1 ms nap between passes)
    time.sleep(0.001)
timer.stop()
gaps = sorted(b - a for a, b in zip(ticks, ticks[1:]))
RESULT = {{"p99_ms": 1000 * gaps[int(0.99 * (len(gaps) - 1))], "max_ms": 1000 * gaps[-1], "ticks": len(ticks),
          "finished": not window.train_page.is_running() and not errors,
          "error": errors[0] if errors else getattr(window, "last_error", ("",))[0]}}
"""  # no window.close(): it would ask whether to save the project, and wait for an answer


def gui_stalls(folder: Path, env: dict, epochs: int = 2) -> list[dict]:
    found = _child(STALLS.format(data=str(folder), epochs=epochs), {**env, "QT_QPA_PLATFORM": "offscreen"})
    note = "" if found["finished"] else f" (training did not finish: {found['error'] or 'no error shown'})"
    return [
        {"row": "GUI thread, longest stall p99 (ms)", "studio": found["p99_ms"], "reference": 10.0,
         "ratio": found["p99_ms"] / 10.0, "reference_is": f"the timer's 10 ms period; fine-tune, {epochs} epochs{note}",
         "target": "p99 < 50 ms"},
        {"row": "GUI thread, longest stall max (ms)", "studio": found["max_ms"], "reference": 10.0,
         "ratio": found["max_ms"] / 10.0, "reference_is": "the timer's 10 ms period", "target": "none set"},
    ]


WINDOW = """
import os, time
start = time.perf_counter()
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
from tlstudio.gui.app import create_window
app, window = create_window()
window.show()
app.processEvents()
RESULT = {"seconds": time.perf_counter() - start}
"""


def time_to_window(env: dict) -> dict:
    shown = _child(WINDOW, {**env, "QT_QPA_PLATFORM": "offscreen"})
    bare = _child("import time\nstart = time.perf_counter()\nimport PySide6.QtWidgets\n"
                  "RESULT = {'seconds': time.perf_counter() - start}", env)
    return {"row": "time to window (s)", "studio": shown["seconds"], "reference": bare["seconds"],
            "ratio": shown["seconds"] / max(bare["seconds"], 1e-6), "reference_is": "importing Qt alone",
            "target": "none yet: measured for issue 13 (the window is built while torch loads in threads)"}


def table(rows: list[dict]) -> str:
    lines = ["| measure | studio | reference (same run) | ratio | target |", "|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['row']} | {r['studio']:.3g} | {r['reference']:.3g} ({r['reference_is']}) | "
                     f"**{r['ratio']:.2f}** | {r['target']} |")
    return "\n".join(lines)


def machine() -> str:
    import torch

    return (f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, {platform.system()} "
            f"{platform.release()}, Python {platform.python_version()}, torch {torch.__version__}, "
            f"threads {torch.get_num_threads()}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer files (a smoke run, not for RESULTS.md)")
    parser.add_argument("--markdown", metavar="FILE", help="append the table with the machine to this file")
    args = parser.parse_args(argv)
    photos = _photos(64 if args.quick else 240)
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        env = {**os.environ, "TLSTUDIO_HOME": str(tmp / "home"), "PYTHONPATH": str(ROOT)}
        os.environ["TLSTUDIO_HOME"] = env["TLSTUDIO_HOME"]
        import data

        real = data.SETS["hymenoptera"].data
        rows = [extraction_ratio(photos), fine_tune_ratio(real), decoding_ratio(photos),
                frozen_epochs_ratio(real, tmp, env), tutorial_ratio(real, tmp, env, 2 if args.quick else 10),
                *scale_ratios(tmp, env, 100 if args.quick else 400, 600 if args.quick else 6000),
                *gui_stalls(real, env, 1 if args.quick else 2), time_to_window(env)]
    text = table(rows)
    print(text)
    if args.markdown:
        stamp = time.strftime("%Y-%m-%d %H:%M")
        with open(args.markdown, "a", encoding="utf-8") as handle:
            handle.write(f"\n## {stamp} — {machine()}\n\n{text}\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
