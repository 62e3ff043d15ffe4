"""The studio with its default flags beside the naive tutorial script, on real public data, on the same split.

Why: quality claims must come from real recordings and photos, and a number means little without the
obvious alternative run on exactly the same files. For each set prepared by `benchmarks/data.py`:

- flat class-folder sets: a stratified 20% validation split by a seeded hash of each file name,
  materialised as train/ and val/ folders of symlinks in the cache, so both tools read the same split;
- sets that come with train/ and val/ (FSDD with a speaker held out, ESC-10 fold 5, the photo sets):
  their own split, likewise as symlink folders (a test/ folder is left out: both tools see train + val).

The studio runs as a user would run it, `tlstudio train DIR --out RUN --quiet`, with a fresh
TLSTUDIO_HOME each time (a cold embedding cache, so its timing is a first run's); its score is
metrics.json's `val_accuracy` (the best epoch's, as the studio keeps the best weights) and `train_seconds`.
The naive script (benchmarks/naive_baseline.py) reports its best epoch too, like the tutorial, and its
final epoch. One training at a time.

    .venv/bin/python benchmarks/bench_real.py                       # every prepared set
    .venv/bin/python benchmarks/bench_real.py --sets fsdd,fsdd_speaker --epochs 15
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import data  # benchmarks/data.py, beside this file

REPO = Path(__file__).resolve().parents[1]
TLSTUDIO = REPO / ".venv" / "bin" / "tlstudio"
PYTHON = REPO / ".venv" / "bin" / "python"
NAIVE = Path(__file__).resolve().parent / "naive_baseline.py"
VAL_SHARE = 0.2


def _rank(seed: int, name: str) -> str:
    return hashlib.sha256(f"{seed}:{name}".encode()).hexdigest()


def _link_tree(target: Path, files: dict[str, Path]) -> Path:
    """A folder of symlinks (relative path -> real file); rebuilt whole so a stale split can't linger."""
    if target.exists():
        shutil.rmtree(target)
    for rel, real in files.items():
        link = target / rel
        link.parent.mkdir(parents=True, exist_ok=True)
        link.symlink_to(real)
    return target


def _subsample(files: list[Path], limit: int | None, seed: int) -> list[Path]:
    """Deterministic: the `limit` files of lowest seeded hash (used only when a set is too slow here)."""
    if limit is None or len(files) <= limit:
        return files
    return sorted(sorted(files, key=lambda p: _rank(seed, p.name))[:limit])


def materialise(ds: data.DataSet, seed: int, max_per_class: int | None) -> tuple[str, Path]:
    """(case name, folder with train/ and val/) for the set."""
    src = ds.data
    suffix = f"-max{max_per_class}" if max_per_class else ""
    files: dict[str, Path] = {}
    if ds.has_split:
        for side in ("train", "val"):
            for folder in sorted(p for p in (src / side).iterdir() if p.is_dir()):
                kept = _subsample(sorted(p for p in folder.rglob("*") if p.is_file()), max_per_class, seed)
                files.update({f"{side}/{folder.name}/{p.name}": p for p in kept})
        case = {"fsdd_speaker": f"speaker '{data.FSDD_HELD_OUT}' held out", "esc10_fold5": "ESC fold 5 held out"}
        name, folder = case.get(ds.name, "given train/val"), ds.folder / f"split-given{suffix}"
    else:
        for folder in sorted(p for p in src.iterdir() if p.is_dir()):
            members = _subsample(sorted(p for p in folder.rglob("*") if p.is_file()), max_per_class, seed)
            ranked = sorted(members, key=lambda p: _rank(seed, p.name))
            n_val = round(VAL_SHARE * len(ranked))
            for i, path in enumerate(ranked):
                files[f"{'val' if i < n_val else 'train'}/{folder.name}/{path.name}"] = path
        name, folder = f"random {VAL_SHARE:.0%} (seed {seed})", ds.folder / f"split-s{seed}{suffix}"
    if max_per_class:
        name += f", max {max_per_class}/class"
    return name, _link_tree(folder, files)


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env.setdefault("OMP_NUM_THREADS", "2")  # the machine is shared: stay within two cores
    return env


def run_studio(folder: Path, epochs: int | None) -> dict:
    with tempfile.TemporaryDirectory(prefix="tls-bench-") as home:
        run = Path(home) / "run"
        cmd = [str(TLSTUDIO), "train", str(folder), "--out", str(run), "--quiet"]
        if epochs:
            cmd += ["--epochs", str(epochs)]
        env = {**_env(), "TLSTUDIO_HOME": home}  # a cold feature cache, and no runs in the user's store
        start = time.perf_counter()
        proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
        wall = time.perf_counter() - start
        metrics_file = run / "metrics.json"
        if proc.returncode != 0 or not metrics_file.is_file():
            tail = (proc.stderr or proc.stdout).strip().splitlines()[-3:]
            return {"error": f"exit {proc.returncode}: {' | '.join(tail)}", "wall_seconds": wall}
        metrics = json.loads(metrics_file.read_text())
        return {
            "val_accuracy": metrics["val_accuracy"],
            "train_seconds": metrics["train_seconds"],
            "best_epoch": metrics.get("best_epoch"),
            "epochs": metrics.get("epochs"),
            "wall_seconds": wall,
        }


def run_naive(folder: Path, epochs: int | None, seed: int) -> dict:
    cmd = [
        str(PYTHON),
        str(NAIVE),
        "--train",
        str(folder / "train"),
        "--val",
        str(folder / "val"),
        "--seed",
        str(seed),
        "--json",
    ]
    if epochs:
        cmd += ["--epochs", str(epochs)]
    start = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, env=_env())
    wall = time.perf_counter() - start
    lines = [line for line in proc.stdout.splitlines() if line.startswith("{")]
    if proc.returncode != 0 or not lines:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-3:]
        return {"error": f"exit {proc.returncode}: {' | '.join(tail)}", "wall_seconds": wall}
    return {**json.loads(lines[-1]), "wall_seconds": wall}


def _count(folder: Path, side: str) -> int:
    return sum(1 for p in (folder / side).rglob("*") if p.is_symlink() or p.is_file())


def _failed(result: dict) -> str:
    return f"failed: {result['error']}" if "error" in result else "not run"


def table(rows: list[dict]) -> str:
    lines = [
        "| set | case | files (train/val) | studio acc | studio s (train / wall) | naive acc (best) "
        "| naive acc (final) | naive s |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for r in rows:
        s, n = r["studio"], r["naive"]
        studio_acc = f"{s['val_accuracy']:.3f}" if "val_accuracy" in s else _failed(s)
        studio_s = (
            f"{s['train_seconds']:.0f} / {s['wall_seconds']:.0f}"
            if "train_seconds" in s
            else f"- / {s.get('wall_seconds', 0):.0f}"
        )
        naive_acc = f"{n['val_accuracy']:.3f}" if "val_accuracy" in n else _failed(n)
        naive_final = f"{n['final_val_accuracy']:.3f}" if "final_val_accuracy" in n else "-"
        lines.append(
            f"| {r['set']} | {r['case']} | {r['train']}/{r['val']} | {studio_acc} | {studio_s} | "
            f"{naive_acc} | {naive_final} | {n.get('wall_seconds', 0):.0f} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Studio defaults vs the naive tutorial script on real data.")
    parser.add_argument("--sets", help=f"comma-separated, from {','.join(data.SETS)} (default: all prepared)")
    parser.add_argument("--epochs", type=int, help="passed to the studio (`--epochs`); default: the studio's own")
    parser.add_argument("--naive-epochs", type=int, help="passed to the naive script; default 100 sound, 25 photos")
    parser.add_argument("--seed", type=int, default=0, help="of the split of flat sets and of the naive script")
    parser.add_argument(
        "--max-per-class",
        default="",
        help="deterministic subsample, e.g. 'clothing=100' or '100' for all (files per class folder)",
    )
    parser.add_argument("--only", choices=("studio", "naive"), help="run just one of the two")
    parser.add_argument("--results", type=Path, help="also write the rows as JSON here (default: in the cache)")
    args = parser.parse_args(argv)

    names = (
        args.sets.split(",")
        if args.sets
        else [n for n, ds in data.SETS.items() if (ds.folder / "manifest.json").is_file()]
    )
    limits: dict[str, int] = {}
    for item in filter(None, args.max_per_class.split(",")):
        key, _, value = item.rpartition("=")
        limits[key or "*"] = int(value)
    rows = []
    for name in names:
        if name not in data.SETS:
            parser.error(f"unknown set {name!r}")
        ds = data.SETS[name]
        data.prepare(ds, quiet=True)
        case, folder = materialise(ds, args.seed, limits.get(name, limits.get("*")))
        row = {
            "set": name,
            "case": case,
            "train": _count(folder, "train"),
            "val": _count(folder, "val"),
            "studio": {},
            "naive": {},
        }
        print(f"== {name}: {case}, {row['train']} train / {row['val']} val files ({folder})", flush=True)
        if args.only != "naive":
            row["studio"] = run_studio(folder, args.epochs)
            print(f"   studio: {row['studio']}", flush=True)
        if args.only != "studio":
            row["naive"] = run_naive(folder, args.naive_epochs, args.seed)
            print(f"   naive:  {row['naive']}", flush=True)
        rows.append(row)
    out = args.results or data.bench_root() / f"bench_real-{time.strftime('%Y%m%d-%H%M%S')}.json"
    out.write_text(json.dumps(rows, indent=1) + "\n")
    print()
    print(table(rows))
    print(f"\n(rows saved to {out})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
