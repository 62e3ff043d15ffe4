"""Scan a folder the user picked into a `DatasetSpec`: classes, files, groups, the split, what was skipped.

The folder is only read. Layouts understood (folder names in any upper/lower case):
- one sub-folder per class (files may sit in nested folders inside it): validation is drawn from it;
- `train/` plus `val/` (or `valid/`, `validation/`), optional `test/`, each holding class sub-folders:
  used as given;
- `train/` plus `test/` and no validation folder: validation is drawn from train/, and test/ is kept
  apart for a final test score.
Drawn splits keep groups (speakers, sessions, copies) on one side: see grouping.py and splits.py. Reading
the folder (the slow part: every file checked) and splitting it (split_stage.py) are two stages, so the
window re-splits with another share, seed or grouping without reading the files again.
"""

from __future__ import annotations

import dataclasses
import os
from collections import Counter
from collections.abc import Callable
from pathlib import Path

from tlstudio.core.data import grouping, targets
from tlstudio.core.data.spec import DatasetSpec, Sample, SkippedFile
from tlstudio.core.data.split_stage import FolderContents, split_contents
from tlstudio.core.data.splits import grouped_split
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
    seen: set[tuple[int, int]] = set()
    for current, dirnames, filenames in os.walk(root, followlinks=True):  # linked class folders count too
        try:
            stat = os.stat(current)
        except OSError:
            continue
        if (stat.st_dev, stat.st_ino) in seen:  # a symlink loop
            dirnames[:] = []
            continue
        seen.add((stat.st_dev, stat.st_ino))
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
    """train/ with val/ and/or test/ beside it (any case); None for a folder of class folders."""
    splits: dict[str, Path] = {}
    others: list[str] = []
    for sub in _subdirs(root):
        role = SPLIT_NAMES.get(sub.name.lower())
        if role and role not in splits:
            splits[role] = sub
        elif not role:
            others.append(sub.name)
    if "train" in splits and ("val" in splits or ("test" in splits and not others)):
        return splits
    return None


def stratified_split(samples: list[Sample], num_classes: int, val_fraction: float,
                     seed: int) -> tuple[list[Sample], list[Sample]]:
    """Per class, about `val_fraction` held out (at least one file when a class has two), by file hash."""
    del num_classes  # kept for callers: the classes are read from the samples
    return grouped_split(samples, val_fraction, seed)


def scan(
    folder: str | os.PathLike[str],
    val_split: float = 0.2,
    seed: int = 0,
    check_file: Callable[[Path], str | None] | str | None = None,
    progress: ProgressFn | None = None,
    group_by: str = "auto",
    task: str = "auto",
    min_classes: int = 2,
) -> DatasetSpec:
    """Read the folder's layout; `check_file` returns a reason to skip a file, or None to keep it.

    A labels.csv in the folder gives each file its target instead of class folders (targets.py); numbers
    make a regression task (`task` "auto"), unless `task` asks for classification. `min_classes` 1: new data
    for a run that continues another (its classes come from that run), so one class is enough.

    check_file="auto" checks each file with the decoder of the folder's modality (images or sound) and,
    for images, also finds near-identical copies (a perceptual hash) so they never straddle the split.
    """
    root = Path(folder).expanduser()
    if not root.exists():
        raise DataError(f"The folder {root} does not exist.", "Check the path and try again.")
    if not root.is_dir():
        raise DataError(f"{root} is a file, not a folder.", "Pick the folder that holds one sub-folder per class.")
    if not 0.0 <= val_split < 1.0:
        raise DataError(f"The validation share must be between 0 and 1, not {val_split}.")
    if group_by not in grouping.GROUP_MODES:
        grouping.compile_group_regex(group_by)
    root = root.resolve()
    modality = _detect_modality(root)
    suffixes = IMAGE_SUFFIXES if modality == "image" else AUDIO_SUFFIXES
    perceptual = None
    if check_file == "auto":
        if modality == "image":
            from tlstudio.core.media.images import check_image as check_file
            from tlstudio.core.media.images import perceptual_hash as perceptual
        else:
            from tlstudio.core.media.audio import check_audio as check_file
    skipped: list[SkippedFile] = []
    warnings: list[str] = []

    table_path = targets.find_table(root)
    if task not in targets.TASKS:
        raise DataError(f"--task takes one of {', '.join(targets.TASKS)}, not '{task}'.")
    if task == "regression" and table_path is None:
        raise DataError(f"Regression needs a labels.csv in {root} with columns file,value.",
                        "Write one line per file: its path inside the folder, a comma, its number.")
    ignored: list[Path] = []
    per_split_files: dict[str, list[tuple[Path, int]]] = {}
    class_dir_of: dict[str, str] = {}
    values: dict[str, float] = {}
    if table_path is not None:
        layout = None
        table = targets.read_table(table_path)
        task = targets.resolve_task(table, task)
        classes, files, table_skipped, table_warnings = _table_files(root, table, task, suffixes, values)
        skipped.extend(table_skipped)
        warnings.extend(table_warnings)
        class_dir_of = {str(path): str(root) for path, _ in files}
        per_split_files["all"] = files
        loose = []
    else:
        task = "classification"
        layout = _split_layout(root)
        split_dirs: dict[str, Path] = layout if layout else {"all": root}
        class_names: dict[str, str] = {}  # case-folded -> the name shown (train/'s spelling first)
        for split in sorted(split_dirs, key=lambda s: s != "train"):
            for sub in _subdirs(split_dirs[split]):
                class_names.setdefault(sub.name.casefold(), sub.name)
        keys = sorted(class_names, key=lambda k: class_names[k])
        classes = [class_names[k] for k in keys]
        for split, split_dir in split_dirs.items():
            files = []
            for sub in _subdirs(split_dir):
                label = keys.index(sub.name.casefold())
                for path in walk_media(sub, suffixes, ignored):
                    files.append((path, label))
                    class_dir_of[str(path)] = str(sub)
            per_split_files[split] = sorted(files, key=lambda item: (item[1], str(item[0])))
        loose = _walk_media_top(root if not layout else None, suffixes)
    regression = task == "regression"
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
    hashes: dict[str, int | None] = {}
    for split, files in per_split_files.items():
        samples: list[Sample] = []
        for path, label in files:
            reason = check_file(path) if check_file else None
            if reason:
                skipped.append(SkippedFile(str(path), reason))
            else:
                samples.append(Sample(str(path), label, value=values.get(str(path))))
                if perceptual is not None:
                    hashes[str(path)] = perceptual(path)
            done += 1
            if progress and (done % 64 == 0 or done == total):
                progress(done, total)
        kept[split] = samples

    all_kept = [sample for samples in kept.values() for sample in samples]
    if regression:
        if len(all_kept) < 4 or len({s.value for s in all_kept}) < 2:
            raise DataError(f"Regression needs at least 4 readable files with different values; {root} has "
                            f"{len(all_kept)} with {len({s.value for s in all_kept})} distinct value(s).",
                            "List more files in labels.csv.")
        # strata stand in for classes while splitting: each range of values is validated, and a file-name
        # token that is the value in disguise (7_jackson_0.wav) is not taken for a source
        strata = _value_strata([s.value for s in all_kept])
        kept = {"all": [dataclasses.replace(s, label=strata[s.value]) for s in all_kept]}
    counts = Counter(sample.label for sample in all_kept)
    if regression:
        counts = Counter({0: len(all_kept), 1: len(all_kept)})  # no classes to check
    usable = classes if regression else [name for index, name in enumerate(classes) if counts.get(index, 0) > 0]
    empty = [] if regression else [name for index, name in enumerate(classes) if counts.get(index, 0) == 0]
    if empty:
        warnings.append(f"Class folder(s) with no usable files were left out: {', '.join(empty)}.")
    if len(usable) < min_classes and not regression:
        kind = "images" if modality == "image" else "sound files"
        found = f"only one class ({usable[0]})" if usable else "no class with usable files"
        raise DataError(
            f"A classifier needs at least two classes, but {root} has {found}.",
            f"Put each class's {kind} in its own sub-folder, for example {root.name}/cats and {root.name}/dogs.",
        )
    singles = [] if regression else [name for index, name in enumerate(classes) if counts.get(index, 0) == 1]
    if empty:  # re-number labels over the usable classes only
        remap = {classes.index(name): new for new, name in enumerate(usable)}
        kept = {
            split: [dataclasses.replace(sample, label=remap[sample.label]) for sample in samples]
            for split, samples in kept.items()
        }
        classes = usable

    contents = FolderContents(str(root), modality, classes, kept, {k: str(v) for k, v in layout.items()}
                              if layout else None, class_dir_of, hashes, skipped, warnings, regression, singles)
    return split_contents(contents, val_split, seed, group_by)


def _table_files(root: Path, table: targets.LabelTable, task: str, suffixes: frozenset[str],
                 values: dict[str, float]) -> tuple[list[str], list[tuple[Path, int]], list[SkippedFile], list[str]]:
    """(classes, files with their label, files listed but unusable, warnings) from labels.csv; a regression's
    numbers go into `values` by path and its one "class" is the column's name."""
    skipped: list[SkippedFile] = []
    warnings = [f"{table.path.name}: {problem}" for problem in table.problems[:5]]
    if len(table.problems) > 5:
        warnings.append(f"{table.path.name}: {len(table.problems) - 5} more line(s) like these were left out.")
    regression = task == "regression"
    classes = [table.column] if regression else sorted({text for _, text in table.rows})
    index = {name: i for i, name in enumerate(classes)}
    files: list[tuple[Path, int]] = []
    seen: set[str] = set()
    for name, text in table.rows:
        # the path as written, made absolute and normalised (not resolved: linked folders inside stay usable)
        path = Path(os.path.normpath(root / name))
        key = str(path)
        if Path(name).is_absolute() or not key.startswith(str(root) + os.sep):
            skipped.append(SkippedFile(key, f"{table.path.name} points outside the folder"))
        elif key in seen:
            continue  # the same file written two ways (a.wav, ./a.wav): the first line counts
        elif not path.is_file():
            skipped.append(SkippedFile(key, f"listed in {table.path.name} but not found"))
        elif path.suffix.lower() not in suffixes:
            skipped.append(SkippedFile(key, "not a file of the folder's kind (image or sound)"))
        else:
            seen.add(key)
            files.append((path, 0 if regression else index[text]))
            if regression:
                values[key] = targets.value_of(text)
    listed = {str(path) for path, _ in files}
    unlisted = [p for p in walk_media(root, suffixes) if str(p) not in listed]
    if unlisted:
        warnings.append(f"{len(unlisted)} file(s) not listed in {table.path.name} were ignored "
                        f"(e.g. {unlisted[0].relative_to(root)}).")
    return classes, sorted(files, key=lambda item: (item[1], str(item[0]))), skipped, warnings


def _value_strata(values: list[float]) -> dict[float, int]:
    """Each distinct value's stratum: the value itself when few values recur (digits, star ratings), else
    quantile bins of about 15 files or more (up to 10), so small sets are not over-validated."""
    distinct = sorted(set(values))
    if len(distinct) <= 20 and len(values) >= 5 * len(distinct):
        return {v: i for i, v in enumerate(distinct)}
    bins = min(10, max(1, len(values) // 15))
    ordered = sorted(values)
    edges = [ordered[len(ordered) * k // bins] for k in range(1, bins)]
    return {v: sum(v >= e for e in edges) for v in distinct}


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
