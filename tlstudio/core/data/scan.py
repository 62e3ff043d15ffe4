"""Scan a folder the user picked into a `DatasetSpec`: classes, files, the split, and what was skipped.

The folder is only read. Two layouts are understood:
- one sub-folder per class (a validation split is drawn, stratified and seeded), or
- `train/` plus `val/` (or `valid/`, `validation/`), optional `test/`, each holding class sub-folders.
"""

from __future__ import annotations

import os
import random
from collections import Counter
from collections.abc import Callable
from pathlib import Path

from tlstudio.core.data.spec import DatasetSpec, Sample, SkippedFile
from tlstudio.core.errors import DataError

IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff"})
AUDIO_SUFFIXES = frozenset({".wav", ".flac", ".ogg", ".mp3"})
SPLIT_NAMES = {"train": "train", "val": "val", "valid": "val", "validation": "val", "test": "test"}
IGNORED_DIRS = frozenset({"__MACOSX", "@eaDir", "$RECYCLE.BIN", "System Volume Information"})


ProgressFn = Callable[[int, int], None]


def _is_hidden(name: str) -> bool:
    return name.startswith(".") or name.startswith("._") or name in IGNORED_DIRS


def _subdirs(folder: Path) -> list[Path]:
    try:
        entries = sorted(os.scandir(folder), key=lambda entry: entry.name)
    except OSError as exc:
        raise DataError(f"Cannot read the folder {folder}: {exc.strerror or exc}.") from exc
    return [Path(entry.path) for entry in entries if not _is_hidden(entry.name) and entry.is_dir()]


def walk_media(folder: Path, suffixes: frozenset[str], ignored: list[Path] | None = None) -> list[Path]:
    """Media files below `folder`, sorted; hidden things ignored, symlink loops survived.

    Other visible files are appended to `ignored`, so the user hears that they were left out.
    """
    found: list[Path] = []
    seen_dirs: set[tuple[int, int]] = set()
    for current, dirnames, filenames in os.walk(folder, followlinks=True):
        try:
            stat = os.stat(current)
        except OSError:
            continue
        key = (stat.st_dev, stat.st_ino)
        if key in seen_dirs:  # a symlink loop or a second link to the same folder
            dirnames[:] = []
            continue
        seen_dirs.add(key)
        dirnames[:] = sorted(name for name in dirnames if not _is_hidden(name))
        for name in sorted(filenames):
            if _is_hidden(name):
                continue
            path = Path(current) / name
            if path.suffix.lower() in suffixes:
                found.append(path)
            elif ignored is not None:
                ignored.append(path)
    return found


def _detect_modality(root: Path) -> str:
    images = audio = 0
    for _current, dirnames, filenames in os.walk(root):
        dirnames[:] = [name for name in dirnames if not _is_hidden(name)]
        for name in filenames:
            suffix = os.path.splitext(name)[1].lower()
            images += suffix in IMAGE_SUFFIXES
            audio += suffix in AUDIO_SUFFIXES
        if images + audio >= 200:
            break
    if images == 0 and audio == 0:
        raise DataError(
            f"No images or sound files were found in {root}.",
            "Pick a folder with one sub-folder per class (for example cats/ and dogs/) holding .jpg/.png "
            "or .wav/.flac/.ogg/.mp3 files.",
        )
    return "image" if images >= audio else "audio"


def _split_layout(root: Path) -> dict[str, Path] | None:
    splits: dict[str, Path] = {}
    for sub in _subdirs(root):
        role = SPLIT_NAMES.get(sub.name.lower())
        if role and role not in splits:
            splits[role] = sub
    if "train" in splits and "val" in splits:
        return splits
    return None


def stratified_split(
    samples: list[Sample], num_classes: int, val_fraction: float, seed: int
) -> tuple[list[Sample], list[Sample]]:
    """Per class: shuffle with the seed and hold out `val_fraction` (at least one when a class has two)."""
    rng = random.Random(seed)
    train: list[Sample] = []
    val: list[Sample] = []
    for label in range(num_classes):
        members = [sample for sample in samples if sample.label == label]
        rng.shuffle(members)
        n_val = 0
        if len(members) >= 2 and val_fraction > 0:
            n_val = min(max(round(len(members) * val_fraction), 1), len(members) - 1)
        val.extend(members[:n_val])
        train.extend(members[n_val:])
    key = lambda sample: (sample.label, sample.path)  # noqa: E731
    return sorted(train, key=key), sorted(val, key=key)


def scan(
    folder: str | os.PathLike[str],
    val_split: float = 0.2,
    seed: int = 0,
    check_file: Callable[[Path], str | None] | str | None = None,
    progress: ProgressFn | None = None,
) -> DatasetSpec:
    """Read the folder's layout; `check_file` returns a reason to skip a file, or None to keep it.

    check_file="auto" checks each file with the decoder of the folder's modality (images or sound).
    """
    root = Path(folder).expanduser()
    if not root.exists():
        raise DataError(f"The folder {root} does not exist.", "Check the path and try again.")
    if not root.is_dir():
        raise DataError(f"{root} is a file, not a folder.", "Pick the folder that holds one sub-folder per class.")
    if not 0.0 <= val_split < 1.0:
        raise DataError(f"The validation share must be between 0 and 1, not {val_split}.")
    root = root.resolve()
    modality = _detect_modality(root)
    suffixes = IMAGE_SUFFIXES if modality == "image" else AUDIO_SUFFIXES
    if check_file == "auto":
        if modality == "image":
            from tlstudio.core.media.images import check_image as check_file
        else:
            from tlstudio.core.media.audio import check_audio as check_file
    skipped: list[SkippedFile] = []
    warnings: list[str] = []

    layout = _split_layout(root)
    split_dirs: dict[str, Path] = layout if layout else {"all": root}
    class_names: set[str] = set()
    for split_dir in split_dirs.values():
        class_names.update(sub.name for sub in _subdirs(split_dir))
    classes = sorted(class_names)

    ignored: list[Path] = []
    per_split_files: dict[str, list[tuple[Path, int]]] = {}
    for split, split_dir in split_dirs.items():
        files: list[tuple[Path, int]] = []
        for label, name in enumerate(classes):
            class_dir = split_dir / name
            if class_dir.is_dir():
                files.extend((path, label) for path in walk_media(class_dir, suffixes, ignored))
        per_split_files[split] = files
    loose = _walk_media_top(root if not layout else None, suffixes)
    if ignored:
        kind = "image" if modality == "image" else "sound"
        examples = ", ".join(path.name for path in ignored[:3])
        warnings.append(f"{len(ignored)} file(s) that are not {kind} files were ignored (e.g. {examples}).")
    if loose:
        warnings.append(
            f"{len(loose)} file(s) lie directly in {root.name}/ outside any class folder and were ignored."
        )

    total = sum(len(files) for files in per_split_files.values())
    done = 0
    kept: dict[str, list[Sample]] = {}
    for split, files in per_split_files.items():
        samples: list[Sample] = []
        for path, label in files:
            reason = check_file(path) if check_file else None
            if reason:
                skipped.append(SkippedFile(str(path), reason))
            else:
                samples.append(Sample(str(path), label))
            done += 1
            if progress and (done % 64 == 0 or done == total):
                progress(done, total)
        kept[split] = samples

    all_kept = [sample for samples in kept.values() for sample in samples]
    counts = Counter(sample.label for sample in all_kept)
    usable = [name for index, name in enumerate(classes) if counts.get(index, 0) > 0]
    empty = [name for index, name in enumerate(classes) if counts.get(index, 0) == 0]
    if empty:
        warnings.append(f"Class folder(s) with no usable files were left out: {', '.join(empty)}.")
    if len(usable) < 2:
        kind = "images" if modality == "image" else "sound files"
        found = f"only one class ({usable[0]})" if usable else "no class with usable files"
        raise DataError(
            f"A classifier needs at least two classes, but {root} has {found}.",
            f"Put each class's {kind} in its own sub-folder, for example {root.name}/cats and {root.name}/dogs.",
        )
    singles = [name for index, name in enumerate(classes) if counts.get(index, 0) == 1]
    if empty:  # re-number labels over the usable classes only
        remap = {classes.index(name): new for new, name in enumerate(usable)}
        kept = {
            split: [Sample(sample.path, remap[sample.label]) for sample in samples]
            for split, samples in kept.items()
        }
        classes = usable

    if layout:
        train, val, test = kept.get("train", []), kept.get("val", []), kept.get("test", [])
        split_source = "folders"
        if not train:
            raise DataError(f"{split_dirs['train']} holds no usable files.", "Put class folders inside train/.")
        if not val:
            raise DataError(f"{split_dirs['val']} holds no usable files.", "Put class folders inside val/.")
    else:
        train, val = stratified_split(kept["all"], len(classes), val_split, seed)
        test = []
        split_source = "random"
    if singles and not layout:
        warnings.append(
            f"Class(es) with a single file cannot be validated and only train: {', '.join(singles)}."
        )
    return DatasetSpec(
        root=str(root),
        modality=modality,
        classes=classes,
        train=train,
        val=val,
        test=test,
        skipped=skipped,
        split_source=split_source,
        warnings=warnings,
    )


def _walk_media_top(root: Path | None, suffixes: frozenset[str]) -> list[Path]:
    if root is None:
        return []
    try:
        return [
            Path(entry.path)
            for entry in os.scandir(root)
            if entry.is_file() and not _is_hidden(entry.name) and Path(entry.name).suffix.lower() in suffixes
        ]
    except OSError:
        return []
