"""The split stage of a scan: what reading a folder found (`FolderContents`), split into train / validation /
test by the split settings (share, seed, grouping). Changing them re-splits without reading a file again: the
split is a property of the data set, shown and set where the data is (the window's Data step).
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass
from pathlib import Path

from tlstudio.core.data import grouping
from tlstudio.core.data.spec import DatasetSpec, Sample, SkippedFile
from tlstudio.core.data.splits import group_of, grouped_split, straddling_groups
from tlstudio.core.errors import DataError


@dataclass(frozen=True)
class FolderContents:
    """The readable files of a folder, by the part of the layout they came from ("all", or train/val/test)."""

    root: str
    modality: str
    classes: list[str]
    kept: dict[str, list[Sample]]
    layout: dict[str, str] | None  # train/ val/ test/ folders, or None for class folders
    class_dir_of: dict[str, str]
    hashes: dict[str, int | None]  # perceptual hashes of images: near-copies never straddle the split
    skipped: list[SkippedFile]
    warnings: list[str]  # what reading found; the split adds its own
    regression: bool
    singles: list[str]  # classes with one file


def resplit(spec: DatasetSpec, val_split: float, seed: int, group_by: str) -> DatasetSpec:
    """The same files split with other settings; a spec read back from a run folder has no contents to split."""
    if spec.contents is None:
        raise DataError("This data set was not scanned here, so it cannot be split again.", "Open the folder again.")
    return split_contents(spec.contents, val_split, seed, group_by)


def split_contents(contents: FolderContents, val_split: float, seed: int, group_by: str) -> DatasetSpec:
    if not 0.0 <= val_split < 1.0:
        raise DataError(f"The validation share must be between 0 and 1, not {val_split}.")
    if group_by not in grouping.GROUP_MODES:
        grouping.compile_group_regex(group_by)
    root = Path(contents.root)
    layout = {k: Path(v) for k, v in contents.layout.items()} if contents.layout else None
    warnings = list(contents.warnings)
    classes, modality, regression, singles = contents.classes, contents.modality, contents.regression, \
        contents.singles
    train, val, test, summary, split_source = _grouped_splits(root, contents.kept, layout,
                                                              contents.class_dir_of, group_by, contents.hashes,
                                                              val_split, seed, warnings)
    target: dict = {}
    if regression:
        train, val, test = ([dataclasses.replace(s, label=0) for s in side] for side in (train, val, test))
        if not train:
            raise DataError("Every file landed in validation, so there is nothing to train on.",
                            "Use a smaller --val-split, or another --group-by.")
        target = target_summary(classes[0], [s.value for s in train])
    if singles and not layout:
        warnings.append(
            f"Class(es) with a single file cannot be validated and only train: {', '.join(singles)}."
        )
    clip_seconds = None
    if modality == "audio":
        from tlstudio.core.media.audio import typical_seconds

        clip_seconds = typical_seconds([s.path for s in train])
    return DatasetSpec(
        clip_seconds=clip_seconds,
        root=str(root),
        modality=modality,
        classes=classes,
        train=train,
        val=val,
        test=test,
        skipped=list(contents.skipped),
        split_source=split_source,
        warnings=warnings,
        grouping=summary,
        split_settings={"val_split": val_split, "seed": seed, "group_by": group_by},
        task="regression" if regression else "classification",
        target=target,
        contents=contents,
    )



def _group_keys(samples: list[Sample], class_dirs: dict[str, str], group_by: str,
                root: Path) -> tuple[list[str], str]:
    """Each sample's group key before duplicates are merged, and words saying how it was found.

    Keys never hold the folder's own location, so a moved or copied folder splits the same way."""
    paths = [os.path.relpath(s.path, root) for s in samples]
    if group_by == "none":
        return paths, "none (each file on its own)"
    if group_by == "folder":
        keys = [f"{s.label}/{grouping.folder_key(s.path, class_dirs[s.path])}" for s in samples]
        return keys, "folder (sub-folders inside each class folder)"
    if group_by == "auto":
        token = grouping.find_name_token(paths, [s.label for s in samples])
        if token is None:
            return paths, "auto: no recurring source in the file names, so each file on its own"
        keys = []
        for path in paths:
            tokens = grouping.name_tokens(path)
            keys.append(f"name:{tokens[token.position].lower()}" if len(tokens) > token.position else path)
        return keys, f"auto: {token.describe()}"
    pattern = grouping.compile_group_regex(group_by)
    return [grouping.regex_key(pattern, path) for path in paths], f"pattern {group_by}"


def _grouped_splits(root: Path, kept: dict[str, list[Sample]], layout: dict[str, Path] | None,
                    class_dir_of: dict[str, str], group_by: str, hashes: dict[str, int | None], val_split: float,
                    seed: int, warnings: list[str]):
    """(train, val, test, grouping summary, split source): groups by the chosen rule over the files a split
    is drawn from, copies merged across everything, whole groups on one side."""
    pool_name = "train" if layout else "all"
    order = [(split, i) for split, samples in kept.items() for i in range(len(samples))]
    flat = [kept[split][i] for split, i in order]
    pool_index = [n for n, (split, _) in enumerate(order) if split == pool_name]
    base_keys = [os.path.relpath(s.path, root) for s in flat]
    rule_keys, described = _group_keys([flat[n] for n in pool_index], class_dir_of, group_by, root)
    for n, key in zip(pool_index, rule_keys, strict=True):
        base_keys[n] = key
    sizes = []
    for sample in flat:
        try:
            sizes.append(os.stat(sample.path).st_size)
        except OSError:
            sizes.append(0)
    links = grouping.duplicate_links([s.path for s in flat], sizes,
                                     [hashes.get(s.path) for s in flat] if hashes else None)
    merged = grouping.merge_groups(base_keys, links)
    flat = [dataclasses.replace(s, group=g) for s, g in zip(flat, merged, strict=True)]
    kept = {split: [] for split in kept}
    for (split, _), sample in zip(order, flat, strict=True):
        kept[split].append(sample)
    copies = sum(1 for a, b in links if base_keys[a] != base_keys[b])

    if layout:
        train, val, test = kept.get("train", []), kept.get("val", []), kept.get("test", [])
        if not train:
            raise DataError(f"{layout['train']} holds no usable files.", "Put class folders inside train/.")
        if "val" in layout:
            split_source = "folders"
            if not val:
                raise DataError(f"{layout['val']} holds no usable files.", "Put class folders inside val/.")
        else:
            split_source = "drawn from train/"
            train, val = grouped_split(train, val_split, seed)
    else:
        train, val = grouped_split(kept["all"], val_split, seed)
        test = []
        split_source = "drawn"
    leaks = straddling_groups(train, val) | straddling_groups(train, test)
    if leaks:
        leaked = [s.path for s in val + test if group_of(s) in leaks]
        warnings.append(f"{len(leaked)} validation/test file(s) are copies of training files (or share their "
                        f"source), so their score is optimistic, e.g. {Path(leaked[0]).name}.")
    groups = {name: len({group_of(s) for s in samples}) for name, samples in (("train", train), ("val", val))}
    drawn = split_source != "folders"
    summary = {
        "by": group_by,
        "rule": described if drawn else "ready-made folders (used as given)",
        "groups": groups,
        "copies_merged": copies,
    }
    if drawn and val and groups["val"] < 5 and groups["val"] < len(val):
        warnings.append(f"Validation holds only {groups['val']} group(s) ({described.split(':')[0]}): its accuracy "
                        "says little about new sources. More sources, or a larger --val-split, make it mean more.")
    return train, val, test, summary, split_source


def target_summary(name: str, values: list[float]) -> dict:
    """What standardises the targets (the training files' mean and spread) and the range trained on."""
    import statistics

    mean = statistics.fmean(values)
    std = statistics.pstdev(values) if len(values) > 1 else 0.0
    return {"name": name, "mean": mean, "std": std if std > 0 else 1.0, "min": min(values), "max": max(values)}
