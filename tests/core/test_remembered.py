"""A folder's last scan is remembered outside it, recalled as it was, and a rescan says what changed."""

from __future__ import annotations

import shutil
from pathlib import Path

from tlstudio.core.data import remembered
from tlstudio.core.data.scan import scan
from tlstudio.demo import make_image_folder

SETTINGS = {"val_split": 0.25, "seed": 0, "group_by": "auto", "min_classes": 2}


def scanned(folder: Path):
    return scan(folder, check_file="auto", **SETTINGS)


def test_a_scan_is_recalled_as_it_was_and_never_written_into_the_folder(tmp_path: Path) -> None:
    folder = make_image_folder(tmp_path / "photos", classes=("circles", "squares"), per_class=6, size=(32, 32))
    before = sorted(p.relative_to(folder) for p in folder.rglob("*"))
    assert remembered.recall(folder, SETTINGS) is None
    spec = scanned(folder)
    remembered.remember(folder, SETTINGS, spec)
    again = remembered.recall(folder, SETTINGS)
    assert again is not None and again.to_dict() == spec.to_dict()
    assert remembered.recall(folder, {**SETTINGS, "val_split": 0.5}) is None  # another split: not this scan
    assert remembered.what_changed(again, scanned(folder)) == ""
    assert sorted(p.relative_to(folder) for p in folder.rglob("*")) == before


def test_the_rescan_names_what_changed(tmp_path: Path) -> None:
    folder = make_image_folder(tmp_path / "photos", classes=("circles", "squares"), per_class=6, size=(32, 32))
    old = scanned(folder)
    first = sorted((folder / "circles").iterdir())[0]
    shutil.copy(first, folder / "circles" / "copy_a.jpg")
    shutil.copy(first, folder / "squares" / "copy_b.jpg")
    sorted((folder / "squares").glob("squares*.jpg"))[0].unlink()
    (folder / "squares" / "broken.jpg").write_bytes(b"not a picture")
    news = remembered.what_changed(old, scanned(folder))
    assert "2 file(s) added" in news and "1 removed" in news and "+1 unreadable" in news


def test_a_damaged_memory_is_ignored(tmp_path: Path) -> None:
    folder = make_image_folder(tmp_path / "photos", classes=("circles", "squares"), per_class=4, size=(32, 32))
    remembered.remember(folder, SETTINGS, scanned(folder))
    (memory,) = (remembered.cache_home() / "scans").glob(f"{remembered._file(folder, SETTINGS).stem}.json")
    memory.write_text("{ half written")
    assert remembered.recall(folder, SETTINGS) is None
