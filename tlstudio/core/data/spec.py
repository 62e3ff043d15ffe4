"""What a scan found: the classes, the files of each split, the files skipped and why.

Plain data, saved as dataset.json in every run folder, so evaluation and resume see the exact split.
"""

from __future__ import annotations

import os
from collections import Counter
from dataclasses import asdict, dataclass, field, replace
from typing import Any

from tlstudio.core.errors import RunError
from tlstudio.core.store.runs import RunDir


@dataclass(frozen=True)
class Sample:
    path: str
    label: int
    group: str = ""  # files of one group (speaker, session, copies of a photo) stay on one side of a split
    value: float | None = None  # a regression target (labels.csv); then `label` is 0

    @property
    def target(self) -> int | float:
        """What the loss compares the output with: the class index, or the number."""
        return self.label if self.value is None else self.value


@dataclass(frozen=True)
class SkippedFile:
    path: str
    reason: str


@dataclass
class DatasetSpec:
    root: str
    modality: str  # "image" or "audio"
    classes: list[str]
    train: list[Sample]
    val: list[Sample]
    test: list[Sample] = field(default_factory=list)
    skipped: list[SkippedFile] = field(default_factory=list)
    split_source: str = "folders"  # "folders" (as given), "drawn", or "drawn from train/" (test/ kept apart)
    warnings: list[str] = field(default_factory=list)
    grouping: dict = field(default_factory=dict)  # rule used, groups per side, copies merged
    split_settings: dict = field(default_factory=dict)  # the val_split, seed and group_by the split came from
    clip_seconds: float | None = None  # sound: the median clip length (of up to 101 training clips)
    task: str = "classification"  # or "regression": one number per file (labels.csv), `classes` = [its name]
    target: dict = field(default_factory=dict)  # regression: the training values' mean, std, min and max
    # what reading the folder found, before the split (split_stage.FolderContents): lets the window re-split
    # without rescanning; never saved (dataset.json holds the split itself)
    contents: Any = field(default=None, repr=False, compare=False)

    @property
    def regression(self) -> bool:
        return self.task == "regression"

    def counts(self, split: str) -> dict[str, int]:
        counter = Counter(sample.label for sample in getattr(self, split))
        return {name: counter.get(index, 0) for index, name in enumerate(self.classes)}

    def sizes(self) -> dict[str, int]:
        return {"train": len(self.train), "val": len(self.val), "test": len(self.test)}

    def to_dict(self) -> dict:
        data = asdict(replace(self, contents=None))
        del data["contents"]
        return data

    @classmethod
    def from_dict(cls, data: dict) -> DatasetSpec:
        data = dict(data)
        for split in ("train", "val", "test"):
            data[split] = [Sample(**sample) for sample in data.get(split, [])]
        data["skipped"] = [SkippedFile(**item) for item in data.get("skipped", [])]
        known = cls.__dataclass_fields__  # dataset.json also records file sizes, read by resume itself
        return cls(**{key: value for key, value in data.items() if key in known})


def target_tensor(targets: list[int | float]):
    """Class indices as int64, regression values as float32: what a batch's "labels" hold."""
    import torch

    if any(isinstance(t, float) for t in targets):
        return torch.tensor(targets, dtype=torch.float32)
    return torch.tensor(targets, dtype=torch.long)


def read_spec(run: RunDir) -> DatasetSpec:
    """dataset.json of a run; damaged content is a RunError (exit 5), not a crash."""
    try:
        return DatasetSpec.from_dict(run.read_json("dataset.json"))
    except (TypeError, KeyError, ValueError, AttributeError) as exc:
        raise RunError(f"{run.file('dataset.json')} is damaged ({type(exc).__name__}).",
                       "Start a new run, or restore the folder from a copy.") from exc


def changed_files(dataset: dict[str, Any]) -> list[str]:
    """Files of the run's splits that are gone or have another size than when the run started."""
    sizes = dataset.get("sizes")
    if not isinstance(sizes, dict):
        return []
    changed = []
    for path, size in sizes.items():
        try:
            if os.stat(path).st_size != size:
                changed.append(path)
        except OSError:
            changed.append(path)
    return changed
