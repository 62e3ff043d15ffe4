"""Real sound data sets for the sound benchmarks, laid out as class folders in a cache outside the repo.

Sources are snapshots of public GitHub repositories, brought by the library's `fetch` (bare git dirs
under /work/.mirror or $TLSTUDIO_MIRROR); files are read with `git show`, never committed anywhere:
- FSDD (Jakobovski/free-spoken-digit-dataset, CC BY-SA 4.0): 3,000 spoken digits, 8 kHz, 6 speakers,
  named DIGIT_SPEAKER_N.wav. Layouts: `flat` (one folder per digit), `heldout-SPEAKER` (train/ + val/,
  the speaker only in val/).
- ESC-10 (karoldvl/ESC-10 at its last commit with data, CC BY-NC): 400 environmental clips, 5 s,
  44.1 kHz Ogg Vorbis, 10 classes, named FOLD-SOURCE-TAKE.ogg (clips of one source recording share SOURCE).

Run: .venv/bin/python benchmarks/sound_sets.py   (prints where each layout is)
"""

from __future__ import annotations

import hashlib
import os
import subprocess
from pathlib import Path

CACHE = Path(os.environ.get("TLSTUDIO_BENCH_CACHE", Path.home() / ".cache" / "tlstudio-bench"))
MIRROR = Path(os.environ.get("TLSTUDIO_MIRROR", "/work/.mirror"))
FSDD_SPEAKERS = ("george", "jackson", "lucas", "nicolas", "theo", "yweweler")

SETS = {
    # name: (mirror dir, commit, path filter, expected file count, expected total bytes)
    "fsdd": ("Jakobovski+free-spoken-digit-dataset", "26eb9aa", "recordings/", 3000, None),
    "esc10": ("karoldvl+ESC-10", "553c8f1", "", 400, 42_025_000),
}


def _git_dir(mirror: str) -> Path:
    base = MIRROR / mirror / "repo"
    return base / ".git" if (base / ".git").is_dir() else base


def _files(name: str) -> list[tuple[str, str, int]]:
    """(path, blob id, size) of the set's sound files at its pinned commit."""
    mirror, commit, prefix, count, _ = SETS[name]
    out = subprocess.run(["git", "--git-dir", str(_git_dir(mirror)), "ls-tree", "-r", "-l", commit],
                         capture_output=True, text=True, check=True).stdout
    rows = []
    for line in out.splitlines():
        meta, path = line.split("\t", 1)
        _, kind, blob, size = meta.split()
        if kind == "blob" and path.startswith(prefix) and path.lower().endswith((".wav", ".ogg")):
            rows.append((path, blob, int(size)))
    if len(rows) != count:
        raise RuntimeError(f"{name}: expected {count} sound files, found {len(rows)}")
    return rows


def _write(name: str, path: str, blob: str, target: Path) -> None:
    if target.is_file():
        return
    data = subprocess.run(["git", "--git-dir", str(_git_dir(SETS[name][0])), "cat-file", "blob", blob],
                          capture_output=True, check=True).stdout
    # a git blob id is sha1("blob <size>\0" + data): checks the bytes came out whole
    if hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest() != blob:
        raise RuntimeError(f"{path}: content does not match its git blob id")
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(data)


def fsdd_flat() -> Path:
    root = CACHE / "fsdd" / "flat"
    for path, blob, _ in _files("fsdd"):
        name = path.rsplit("/", 1)[-1]
        _write("fsdd", path, blob, root / name.split("_")[0] / name)
    return root


def fsdd_heldout(speaker: str) -> Path:
    """train/ and val/ folders: `speaker` only in val/ (a voice never heard in training)."""
    root = CACHE / "fsdd" / f"heldout-{speaker}"
    for path, blob, _ in _files("fsdd"):
        name = path.rsplit("/", 1)[-1]
        digit, who, _take = name[:-4].split("_")
        side = "val" if who == speaker else "train"
        _write("fsdd", path, blob, root / side / digit / name)
    return root


def esc10_flat() -> Path:
    root = CACHE / "esc10" / "flat"
    for path, blob, _ in _files("esc10"):
        folder, name = path.split("/", 1)
        label = folder.split(" - ", 1)[-1].lower().replace(" ", "_")
        _write("esc10", path, blob, root / label / name)
    return root


def esc10_folds() -> Path:
    """ESC's own cross-validation: fold 5 (the leading digit of each name) is val/, folds 1-4 train/."""
    root = CACHE / "esc10" / "fold5"
    for path, blob, _ in _files("esc10"):
        folder, name = path.split("/", 1)
        label = folder.split(" - ", 1)[-1].lower().replace(" ", "_")
        _write("esc10", path, blob, root / ("val" if name.startswith("5-") else "train") / label / name)
    return root


if __name__ == "__main__":
    for made in [fsdd_flat(), *(fsdd_heldout(s) for s in FSDD_SPEAKERS), esc10_flat(), esc10_folds()]:
        print(made, sum(1 for p in made.rglob("*") if p.is_file()), "files")
