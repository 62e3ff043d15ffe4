"""Drawing a validation split that stays put: each group's side is a function of (group key, seed).

Not a shuffle: adding, removing or renaming one file never moves any other file across the split (a
shuffle re-deals everything). A group goes to validation when its hash, read as a number in [0, 1), is
below the validation share, so each class gets about that share. A class whose groups all landed on one
side gets its lowest-hashed group moved over, so every class with two or more groups is validated.
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from collections.abc import Sequence

from tlstudio.core.data.spec import Sample


def unit_hash(key: str, seed: int) -> float:
    digest = hashlib.blake2b(f"{seed}\0{key}".encode("utf-8", "surrogateescape"), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2**64


def grouped_split(samples: Sequence[Sample], val_fraction: float, seed: int) -> tuple[list[Sample], list[Sample]]:
    """Samples carry their group (`Sample.group`, the path when ungrouped); whole groups go to one side."""
    if val_fraction <= 0 or not samples:
        return sorted(samples, key=_order), []
    group_hash = {group_of(sample): unit_hash(group_of(sample), seed) for sample in samples}
    in_val = {group for group, value in group_hash.items() if value < val_fraction}
    by_class: dict[int, set[str]] = defaultdict(set)
    for sample in samples:
        by_class[sample.label].add(group_of(sample))
    for label in sorted(by_class):
        groups = by_class[label]
        if len(groups) < 2:
            continue
        if not groups & in_val:  # nothing of this class validated: move its lowest-hashed group over
            in_val.add(min(groups, key=lambda g: (group_hash[g], g)))
        elif groups <= in_val:  # nothing of this class left to train on
            in_val.discard(max(groups, key=lambda g: (group_hash[g], g)))
    train = [s for s in samples if group_of(s) not in in_val]
    val = [s for s in samples if group_of(s) in in_val]
    return sorted(train, key=_order), sorted(val, key=_order)


def group_of(sample: Sample) -> str:
    """A file with no group is a group of its own."""
    return sample.group or sample.path


def _order(sample: Sample) -> tuple[int, str]:
    return sample.label, sample.path


def straddling_groups(train: Sequence[Sample], val: Sequence[Sample]) -> set[str]:
    """Groups with files on both sides: only possible with ready-made train/ and val/ folders."""
    return {group_of(s) for s in train} & {group_of(s) for s in val}
