"""Scanning folders: layouts, splits, what is ignored, what is refused, and that nothing is written."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests.helpers import tree_digest
from tlstudio.core.data.scan import scan, stratified_split
from tlstudio.core.errors import DataError
from tlstudio.core.media.images import check_image
from tlstudio.demo import make_image_folder


def test_flat_folder_gets_a_stratified_seeded_split(shapes_dir: Path) -> None:
    spec = scan(shapes_dir, val_split=0.25, seed=3, check_file=check_image)
    assert spec.modality == "image"
    assert spec.classes == ["circles", "squares", "triangles"]
    assert spec.split_source == "random"
    assert spec.counts("val") == {"circles": 6, "squares": 6, "triangles": 6}
    assert spec.counts("train") == {"circles": 18, "squares": 18, "triangles": 18}
    assert not {s.path for s in spec.train} & {s.path for s in spec.val}
    again = scan(shapes_dir, val_split=0.25, seed=3)
    other = scan(shapes_dir, val_split=0.25, seed=4)
    assert [s.path for s in again.val] == [s.path for s in spec.val]
    assert [s.path for s in other.val] != [s.path for s in spec.val]


@pytest.mark.parametrize("val_name", ["val", "valid", "validation", "Validation"])
def test_ready_made_splits_are_used_as_given(tmp_path: Path, val_name: str) -> None:
    root = make_image_folder(tmp_path / "d", classes=("a", "b"), per_class=4, val_per_class=2, size=(32, 32),
                             layout="split")
    (root / "val").rename(root / val_name)
    test_dir = root / "test" / "a"
    test_dir.mkdir(parents=True)
    shutil.copy(next((root / "train" / "a").iterdir()), test_dir / "x.jpg")
    spec = scan(root)
    assert spec.split_source == "folders"
    assert spec.sizes() == {"train": 8, "val": 4, "test": 1}


def test_hidden_and_non_media_files_are_ignored(tmp_path: Path) -> None:
    root = make_image_folder(tmp_path / "d", classes=("a", "b"), per_class=3, size=(32, 32))
    (root / "a" / ".hidden.jpg").write_bytes((root / "a" / "a_0000.jpg").read_bytes())
    (root / "a" / "notes.txt").write_text("not an image")
    (root / "__MACOSX").mkdir()
    (root / "__MACOSX" / "a_0000.jpg").write_bytes(b"junk")
    (root / ".thumbs").mkdir()
    spec = scan(root, val_split=0.0)
    assert spec.classes == ["a", "b"]
    assert len(spec.train) == 6 and not spec.skipped


def test_undecodable_files_are_skipped_and_named(tmp_path: Path) -> None:
    root = make_image_folder(tmp_path / "d", classes=("a", "b"), per_class=3, size=(32, 32))
    (root / "a" / "text.png").write_text("I am text, not a PNG")
    (root / "b" / "empty.jpg").write_bytes(b"")
    spec = scan(root, val_split=0.0, check_file=check_image)
    reasons = {Path(s.path).name: s.reason for s in spec.skipped}
    assert set(reasons) == {"text.png", "empty.jpg"}
    assert "not an image" in reasons["text.png"] and "empty" in reasons["empty.jpg"]
    assert len(spec.train) == 6


def test_one_class_is_a_clear_error(tmp_path: Path) -> None:
    root = make_image_folder(tmp_path / "d", classes=("only",), per_class=3, size=(32, 32))
    with pytest.raises(DataError, match="at least two classes") as info:
        scan(root)
    assert "sub-folder" in info.value.hint


def test_empty_and_missing_folders_are_clear_errors(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="No images or sound files"):
        scan(tmp_path / "empty")
    with pytest.raises(DataError, match="does not exist"):
        scan(tmp_path / "nowhere")


def test_a_class_left_empty_by_skips_is_dropped_with_a_warning(tmp_path: Path) -> None:
    root = make_image_folder(tmp_path / "d", classes=("a", "b", "c"), per_class=3, size=(32, 32))
    for path in (root / "c").iterdir():
        path.write_bytes(b"")
    spec = scan(root, val_split=0.0, check_file=check_image)
    assert spec.classes == ["a", "b"]
    assert any("no usable files" in w for w in spec.warnings)
    assert {s.label for s in spec.train} == {0, 1}


def test_scanning_never_writes_to_the_folder(shapes_dir: Path) -> None:
    before = tree_digest(shapes_dir)
    scan(shapes_dir, check_file=check_image)
    assert tree_digest(shapes_dir) == before


def test_split_keeps_one_validation_file_for_small_classes() -> None:
    from tlstudio.core.data.spec import Sample

    samples = [Sample(f"{c}{i}", c) for c in range(2) for i in range(3)]
    train, val = stratified_split(samples, 2, 0.1, seed=0)
    assert sorted(s.label for s in val) == [0, 1]
    assert len(train) == 4
