"""Real public data sets for the benchmarks, laid out as class folders in a cache outside the repository.

Quality claims must be measured on real recordings and photos, never on data we generate, and the data
must never enter the repository. Every set here is read from a git snapshot of a public GitHub repository
at a pinned commit (so it cannot drift), written to `$TLSTUDIO_BENCH_DATA/<name>/data/` (default
`~/.cache/tlstudio-bench`), and checked: files per class, and a sha256 of the sorted list of
(relative path, size) so that a changed source is noticed instead of silently changing the numbers.

Snapshots are looked for as git directories under `$TLSTUDIO_MIRROR` (default `/work/.mirror`), as
`owner+name/repo/.git` or `owner+name/repo` (bare), which is where the library's `fetch` tool puts them.
With a network, `git clone --bare https://github.com/OWNER/NAME $TLSTUDIO_MIRROR/OWNER+NAME/repo` gives
the same thing.

    .venv/bin/python benchmarks/data.py list
    .venv/bin/python benchmarks/data.py prepare fsdd
    .venv/bin/python benchmarks/data.py prepare all
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import subprocess
import sys
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

MIRROR = Path(os.environ.get("TLSTUDIO_MIRROR", "/work/.mirror"))
SOUND_EXT = (".wav", ".ogg", ".flac", ".mp3")
PHOTO_EXT = (".jpg", ".jpeg", ".png", ".gif")  # hymenoptera keeps its imageNotFound.gif, as shipped


def bench_root() -> Path:
    """The cache root; outside the repository so data is never committed."""
    return Path(os.environ.get("TLSTUDIO_BENCH_DATA", Path.home() / ".cache" / "tlstudio-bench")).expanduser()


@dataclass(frozen=True)
class DataSet:
    """One benchmark set: where it comes from and what it must look like once laid out."""

    name: str
    kind: str  # "sound" or "photo"
    repo: str  # owner/name on GitHub
    commit: str  # pinned: the files never change under us
    prefix: str  # path inside the repository the files come from
    licence: str
    about: str
    place: Callable[[str], str | None]  # repo path -> path under data/ (None: not part of the set)
    counts: dict[str, int]  # expected files per class folder (or side/class for split sets)
    fingerprint: str  # sha256 of the sorted "relpath<TAB>size" lines
    notes: list[str] = field(default_factory=list)
    value: Callable[[str], str] | None = None  # a regression set: each file's number, written to labels.csv

    @property
    def folder(self) -> Path:
        return bench_root() / self.name

    @property
    def data(self) -> Path:
        return self.folder / "data"

    @property
    def has_split(self) -> bool:
        """True when the layout already has train/ and val/ (otherwise it is a flat class-folder set)."""
        return any(key.startswith("train/") for key in self.counts)


# ----------------------------------------------------------------------------------------------- layouts


def _fsdd_flat(path: str) -> str | None:
    name = path.rsplit("/", 1)[-1]
    if not (path.startswith("recordings/") and name.endswith(".wav")):
        return None
    return f"{name.split('_')[0]}/{name}"


FSDD_HELD_OUT = "theo"


def _fsdd_speaker(path: str) -> str | None:
    flat = _fsdd_flat(path)
    if flat is None:
        return None
    speaker = flat.rsplit("/", 1)[-1].split("_")[1]
    return f"{'val' if speaker == FSDD_HELD_OUT else 'train'}/{flat}"


def _fsdd_recordings(path: str) -> str | None:
    """One folder of recordings, no class folders: the digit comes from labels.csv (regression)."""
    flat = _fsdd_flat(path)
    return None if flat is None else f"recordings/{flat.rsplit('/', 1)[-1]}"


def _fsdd_digit(rel: str) -> str:
    return rel.rsplit("/", 1)[-1].split("_")[0]


def _esc10_label(folder: str) -> str:
    return folder.split(" - ", 1)[-1].lower().replace(" ", "_")


def _esc10_flat(path: str) -> str | None:
    parts = path.split("/")
    if len(parts) != 2 or not parts[1].endswith(".ogg"):
        return None
    return f"{_esc10_label(parts[0])}/{parts[1]}"


def _esc10_fold5(path: str) -> str | None:
    """ESC's own cross-validation folds (the leading digit of each name): fold 5 is val/.

    Clips cut from one source recording (same middle number, -A/-B/-C) share a fold, so none straddles.
    """
    flat = _esc10_flat(path)
    if flat is None:
        return None
    return f"{'val' if flat.rsplit('/', 1)[-1].startswith('5-') else 'train'}/{flat}"


def _class_tree(prefix: str, ext: tuple[str, ...], rename: dict[str, str] | None = None) -> Callable[[str], str | None]:
    """A repository folder that already holds [side/]class/file: keep it as it is (sides renamed)."""

    def place(path: str) -> str | None:
        if not path.startswith(prefix) or not path.lower().endswith(ext):
            return None
        rel = path[len(prefix) :]
        head, _, rest = rel.partition("/")
        if rename and head in rename:
            rel = f"{rename[head]}/{rest}"
        return rel

    return place


SETS: dict[str, DataSet] = {}


def _add(ds: DataSet) -> None:
    SETS[ds.name] = ds


_FSDD = dict(
    kind="sound",
    repo="Jakobovski/free-spoken-digit-dataset",
    commit="26eb9aaf76e81b692f806f9140c2d2777410d7a1",
    prefix="recordings/",
    licence="CC BY-SA 4.0",
)
_add(
    DataSet(
        name="fsdd",
        **_FSDD,
        place=_fsdd_flat,
        about="Free Spoken Digit Dataset: 3,000 recordings of the digits 0-9, 8 kHz wav, 6 speakers x 50 takes",
        counts={str(d): 300 for d in range(10)},
        fingerprint="8cb9766f59e68c3d21892fe3c13f3058cd1af8a010f1563c478670bb0d70ae1a",
    )
)
_add(
    DataSet(
        name="fsdd_value",
        **_FSDD,
        place=_fsdd_recordings,
        value=_fsdd_digit,
        about="FSDD as a regression: recordings/ plus labels.csv (file,value) whose value is the digit spoken",
        counts={"recordings": 3000},
        fingerprint="266b3b815f8fef2bff924961d19a0675680f700a9d9267995f328babe7985cf5",
    )
)
_add(
    DataSet(
        name="fsdd_speaker",
        **_FSDD,
        place=_fsdd_speaker,
        about=f"FSDD with speaker '{FSDD_HELD_OUT}' only in val/: a voice never heard in training",
        counts={**{f"train/{d}": 250 for d in range(10)}, **{f"val/{d}": 50 for d in range(10)}},
        fingerprint="358c0890384f55bcb425bc6e7c58949c595893d78ae8eddcae6edf434ebe79b8",
    )
)
_ESC10 = dict(
    kind="sound",
    repo="karoldvl/ESC-10",
    commit="553c8f1743b9dba6b282e1323c3ca8fa76923448",  # last commit with the audio (later moved to ESC-50)
    prefix="",
    licence="CC BY 3.0 (the set); each clip CC0 or CC BY 3.0, from freesound.org (README lists each)",
)
_ESC10_CLASSES = (
    "baby_cry",
    "chainsaw",
    "clock_tick",
    "dog_bark",
    "fire_crackling",
    "helicopter",
    "person_sneeze",
    "rain",
    "rooster",
    "sea_waves",
)
_add(
    DataSet(
        name="esc10",
        **_ESC10,
        place=_esc10_flat,
        about="ESC-10 environmental sounds: 400 clips of 5 s, 44.1 kHz Ogg Vorbis, 10 classes x 40",
        counts={c: 40 for c in _ESC10_CLASSES},
        fingerprint="5b6d97ddcd3dc4d1d28ea233f95e53a9d3f99296a5166a4dff8af84a0d5805dc",
    )
)
_add(
    DataSet(
        name="esc10_fold5",
        **_ESC10,
        place=_esc10_fold5,
        about="ESC-10 with its official fold 5 as val/ (folds keep clips of one source recording together)",
        counts={**{f"train/{c}": 32 for c in _ESC10_CLASSES}, **{f"val/{c}": 8 for c in _ESC10_CLASSES}},
        fingerprint="f02ffc331068e832525829ef9c0ed63a2c5b166cea663d5c2450b958f79dfe6f",
    )
)
_INSTRUMENTS = (
    "Acoustic_guitar",
    "Bass_drum",
    "Cello",
    "Clarinet",
    "Double_bass",
    "Flute",
    "Hi_hat",
    "Saxophone",
    "Snare_drum",
    "Violin_or_fiddle",
)
_add(
    DataSet(
        name="instruments",
        kind="sound",
        repo="seth814/Audio-Classification",
        commit="2aca6936241ce4273e9acc02d738e029433aa9ec",
        prefix="wavfiles/",
        licence="clips from Freesound via FSDKaggle2018 (CC0 / CC BY / CC BY-NC per clip, labels CC BY 4.0); "
        "repository code MIT",
        about="Musical instrument notes and phrases: 300 wav clips (44.1 kHz, 0.3-30 s), 10 instruments x 30",
        place=_class_tree("wavfiles/", SOUND_EXT),
        counts={c: 30 for c in _INSTRUMENTS},
        fingerprint="965fa76c8d57dbc55389308db4bf017e332aacccf7ed239dce6125081939ea15",
    )
)
_add(
    DataSet(
        name="hymenoptera",
        kind="photo",
        repo="zhangtao7750/syn",
        commit="f0503091488f67b6809a6da2eaa43c25f2f277fc",  # before an ImgBot commit that recompressed the JPEGs
        prefix="hymenoptera_data/",
        licence="none stated in the repository; the PyTorch transfer-learning tutorial's ants/bees set, "
        "images from ImageNet (non-commercial research and education)",
        about="Ants vs bees photos from the PyTorch transfer learning tutorial, train/ and val/ as distributed",
        place=_class_tree("hymenoptera_data/", PHOTO_EXT),
        counts={"train/ants": 124, "train/bees": 121, "val/ants": 70, "val/bees": 83},
        fingerprint="167b84e9953c4e43fe238d57116eef036de0b5d64b9c160f650894991549399b",
    )
)
_CLOTHES = ("dress", "hat", "longsleeve", "outwear", "pants", "shirt", "shoes", "shorts", "skirt", "t-shirt")
_add(
    DataSet(
        name="clothing",
        kind="photo",
        repo="alexeygrigorev/clothing-dataset-small",
        commit="11961516512414bf9f6c150a832cfd21b54a6b54",
        prefix="",
        licence="CC0 1.0",
        about="Clothing photos (top-10 classes of the clothing dataset): train/, val/ (its validation/) and test/",
        place=_class_tree("", PHOTO_EXT, rename={"validation": "val"}),
        counts={
            **dict(
                zip((f"train/{c}" for c in _CLOTHES), (241, 123, 455, 184, 468, 290, 198, 202, 112, 795), strict=True)
            ),
            **dict(zip((f"val/{c}" for c in _CLOTHES), (32, 14, 49, 24, 49, 29, 26, 25, 12, 81), strict=True)),
            **dict(zip((f"test/{c}" for c in _CLOTHES), (15, 12, 72, 38, 42, 26, 73, 30, 12, 52), strict=True)),
        },
        fingerprint="88b61ca83879d782c00eb3692a8fb584e7189892b1df6dfbe390f5fbd6b7ba0e",
    )
)


# ----------------------------------------------------------------------------------------------- the work


def git_dir(repo: str) -> Path:
    """The snapshot's git directory, or an error saying how to get one."""
    base = MIRROR / repo.replace("/", "+") / "repo"
    for candidate in (base / ".git", base):
        if (candidate / "objects").is_dir():
            return candidate
    raise SystemExit(
        f"no snapshot of {repo} under {MIRROR}: bring one with the library's fetch tool "
        f"(github:{repo}), or `git clone --bare https://github.com/{repo} {base}`"
    )


def _git(gdir: Path, *args: str) -> str:
    return subprocess.run(["git", "--git-dir", str(gdir), *args], capture_output=True, text=True, check=True).stdout


def plan(ds: DataSet) -> list[tuple[str, str, int]]:
    """(path under data/, blob id, size) of every file of the set, from the pinned commit's tree."""
    gdir = git_dir(ds.repo)
    rows = []
    for line in _git(gdir, "ls-tree", "-r", "-l", "-z", ds.commit, "--", ds.prefix or ".").split("\0"):
        if not line:
            continue
        meta, path = line.split("\t", 1)
        _mode, kind, blob, size = meta.split()
        rel = ds.place(path) if kind == "blob" else None
        if rel is not None:
            rows.append((rel, blob, int(size)))
    return sorted(rows)


def fingerprint(rows: list[tuple[str, int]]) -> str:
    """sha256 of the sorted file list with sizes: changes when any file is added, removed, renamed or resized."""
    text = "".join(f"{rel}\t{size}\n" for rel, size in sorted(rows))
    return hashlib.sha256(text.encode()).hexdigest()


def class_counts(rels: list[str]) -> dict[str, int]:
    """Files per class folder (side/class when the set has train/ and val/)."""
    counts: Counter[str] = Counter()
    for rel in rels:
        parts = rel.split("/")
        key = "/".join(parts[:2]) if parts[0] in ("train", "val", "test") else parts[0]
        counts[key] += 1
    return dict(sorted(counts.items()))


def check(ds: DataSet, rows: list[tuple[str, int]]) -> list[str]:
    """What differs from the expected counts and fingerprint (empty when all is as recorded)."""
    problems = []
    counts = class_counts([rel for rel, _ in rows])
    if counts != dict(sorted(ds.counts.items())):
        problems.append(f"class counts {counts} differ from the expected {dict(sorted(ds.counts.items()))}")
    got = fingerprint(rows)
    if ds.fingerprint and got != ds.fingerprint:
        problems.append(f"fingerprint {got} differs from the recorded {ds.fingerprint}")
    return problems


def _on_disk(ds: DataSet) -> list[tuple[str, int]]:
    if not ds.data.is_dir():
        return []
    return sorted((p.relative_to(ds.data).as_posix(), p.stat().st_size) for p in ds.data.rglob("*")
                  if p.is_file() and p != ds.data / "labels.csv")


def _write_blobs(gdir: Path, todo: list[tuple[Path, str, int]]) -> None:
    """Stream blobs out of git in one process (thousands of `git show` calls would take minutes)."""
    proc = subprocess.Popen(
        ["git", "--git-dir", str(gdir), "cat-file", "--batch"], stdin=subprocess.PIPE, stdout=subprocess.PIPE
    )
    assert proc.stdin and proc.stdout
    try:
        for target, blob, size in todo:
            proc.stdin.write(f"{blob}\n".encode())
            proc.stdin.flush()
            header = proc.stdout.readline().split()
            if len(header) != 3 or header[1] != b"blob" or int(header[2]) != size:
                raise RuntimeError(f"{target.name}: git answered {header!r} for blob {blob}")
            data = proc.stdout.read(size)
            proc.stdout.read(1)  # the newline after each object
            # a blob id is sha1("blob <size>\0" + content): proves the bytes came out whole
            if hashlib.sha1(b"blob %d\0" % size + data).hexdigest() != blob:
                raise RuntimeError(f"{target}: content does not match its git blob id")
            target.parent.mkdir(parents=True, exist_ok=True)
            part = target.with_name(target.name + ".part")
            part.write_bytes(data)
            part.replace(target)
    finally:
        proc.stdin.close()
        proc.wait()


def prepare(ds: DataSet, *, quiet: bool = False) -> Path:
    """Lay the set out under its cache folder (idempotent: only missing or wrong files are written)."""
    manifest = ds.folder / "manifest.json"
    if manifest.is_file() and not check(ds, _on_disk(ds)):
        saved = json.loads(manifest.read_text())
        if saved.get("fingerprint") == fingerprint(_on_disk(ds)) and saved.get("commit") == ds.commit:
            if not quiet:
                print(f"{ds.name}: already prepared at {ds.data}")
            return ds.data
    rows = plan(ds)
    problems = check(ds, [(rel, size) for rel, _, size in rows])
    if problems:
        raise SystemExit(
            f"{ds.name}: the source at {ds.repo}@{ds.commit[:8]} is not as recorded: " + "; ".join(problems)
        )
    wanted = {rel for rel, _, _ in rows}
    for rel, _size in _on_disk(ds):  # files left from an older layout would be taken for data
        if rel not in wanted:
            (ds.data / rel).unlink()
    todo = [
        (ds.data / rel, blob, size)
        for rel, blob, size in rows
        if not ((ds.data / rel).is_file() and (ds.data / rel).stat().st_size == size)
    ]
    if todo:
        if not quiet:
            print(f"{ds.name}: writing {len(todo)} of {len(rows)} files to {ds.data}", flush=True)
        _write_blobs(git_dir(ds.repo), todo)
    disk = _on_disk(ds)
    problems = check(ds, disk)
    if problems:
        raise SystemExit(f"{ds.name}: after writing, " + "; ".join(problems))
    if ds.value is not None:
        lines = ["file,value"] + [f"{rel},{ds.value(rel)}" for rel, _ in disk]
        (ds.data / "labels.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    record = {
        "name": ds.name,
        "kind": ds.kind,
        "about": ds.about,
        "source": f"https://github.com/{ds.repo}",
        "repo": ds.repo,
        "path": ds.prefix or "/",
        "commit": ds.commit,
        "licence": ds.licence,
        "files": len(disk),
        "bytes": sum(size for _, size in disk),
        "class_counts": class_counts([r for r, _ in disk]),
        "fingerprint": fingerprint(disk),
    }
    manifest.write_text(json.dumps(record, indent=1) + "\n")
    if not quiet:
        print(f"{ds.name}: {len(disk)} files, {record['bytes'] / 1e6:.1f} MB at {ds.data}")
        if not ds.fingerprint:
            print(f"  (no fingerprint recorded yet; this one is {record['fingerprint']})")
    return ds.data


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("list", help="the sets, their sources and whether they are prepared")
    p = sub.add_parser("prepare", help="lay out a set (or 'all') in the cache")
    p.add_argument("name", help=f"one of {', '.join(SETS)}, or all")
    args = parser.parse_args(argv)
    if args.command == "list":
        for ds in SETS.values():
            manifest = ds.folder / "manifest.json"
            state = "prepared" if manifest.is_file() else "not prepared"
            print(
                f"{ds.name:13} {ds.kind:5} {sum(ds.counts.values()):5} files  {ds.repo}@{ds.commit[:8]}:"
                f"{ds.prefix or '/'}  [{state}]\n{'':13} {ds.about}\n{'':13} licence: {ds.licence}"
            )
        print(f"cache: {bench_root()}")
        return 0
    names = list(SETS) if args.name == "all" else [args.name]
    unknown = [n for n in names if n not in SETS]
    if unknown:
        parser.error(f"unknown set {unknown[0]!r}; known: {', '.join(SETS)}")
    for name in names:
        prepare(SETS[name])
    return 0


if __name__ == "__main__":
    sys.exit(main())
