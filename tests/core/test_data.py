"""Scanning folders: layouts, splits, what is ignored, what is refused, and that nothing is written."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests.helpers import tree_digest
from tlstudio.core.data.scan import scan, stratified_split
from tlstudio.core.errors import ConfigError, DataError
from tlstudio.core.media.images import check_image
from tlstudio.demo import make_image_folder


def test_flat_folder_gets_a_stratified_seeded_split(shapes_dir: Path) -> None:
    spec = scan(shapes_dir, val_split=0.25, seed=3, check_file=check_image)
    assert spec.modality == "image"
    assert spec.classes == ["circles", "squares", "triangles"]
    assert spec.split_source == "drawn"
    for name, count in spec.counts("val").items():  # about a quarter of each class's 24, never none, never all
        assert 2 <= count <= 12, (name, count)
    assert sum(spec.counts("val").values()) + sum(spec.counts("train").values()) == 72
    assert not {s.path for s in spec.train} & {s.path for s in spec.val}
    again = scan(shapes_dir, val_split=0.25, seed=3)
    other = scan(shapes_dir, val_split=0.25, seed=4)
    assert [s.path for s in again.val] == [s.path for s in spec.val]
    assert [s.path for s in other.val] != [s.path for s in spec.val]
    assert spec.split_settings == {"val_split": 0.25, "seed": 3, "group_by": "auto"}


def test_adding_a_file_never_moves_the_others(shapes_dir: Path, tmp_path: Path) -> None:
    root = Path(shutil.copytree(shapes_dir, tmp_path / "d"))
    before = scan(root, val_split=0.25, seed=3)
    for n in range(5):  # new files, copies of a validated one among them
        shutil.copy(root / "circles" / "circles_0000.jpg", root / "squares" / f"extra {n}.png")
        after = scan(root, val_split=0.25, seed=3)
        old = {s.path for s in before.val}
        assert old <= {s.path for s in after.val} and not old & {s.path for s in after.train}


def test_a_numbering_that_restarts_per_class_is_not_taken_for_a_source(shapes_dir: Path) -> None:
    spec = scan(shapes_dir)  # circles_0000.jpg, squares_0000.jpg, ...: a counter, not a speaker
    assert "no recurring source" in spec.grouping["rule"]
    assert spec.grouping["groups"]["val"] == len(spec.val)


def _speakers(root: Path, classes=("yes", "no", "up"), speakers=("ann", "bob", "cleo", "dev", "eli", "fay",
              "gus", "hal"), takes: int = 3) -> Path:
    """DIGIT_SPEAKER_N-style names: the speaker is the source that must not straddle the split."""
    made = make_image_folder(root / "tmp", classes=classes, per_class=len(speakers) * takes, size=(32, 32))
    for label in classes:
        (root / label).mkdir(parents=True)
        files = sorted((made / label).iterdir())
        for n, path in enumerate(files):
            path.rename(root / label / f"{label}_{speakers[n // takes]}_{n % takes}.jpg")
    shutil.rmtree(made)
    return root


def _speaker(path: str) -> str:
    return Path(path).stem.split("_")[1]


def test_auto_grouping_keeps_each_speaker_on_one_side(tmp_path: Path) -> None:
    spec = scan(_speakers(tmp_path / "d"), val_split=0.25, seed=0)
    train_speakers = {_speaker(s.path) for s in spec.train}
    val_speakers = {_speaker(s.path) for s in spec.val}
    assert val_speakers and train_speakers and not train_speakers & val_speakers
    assert "token 2" in spec.grouping["rule"] and "'ann'" in spec.grouping["rule"]
    assert spec.grouping["groups"] == {"train": len(train_speakers), "val": len(val_speakers)}
    assert any("only" in w and "group" in w for w in spec.warnings)  # few speakers in validation: said
    assert {s.group for s in spec.val} == {f"name:{name}" for name in val_speakers}  # recorded per file


def test_auto_grouping_is_not_fooled_by_names_of_different_shapes() -> None:
    """espeak-style voices ('en-gb+f5_0', 'en-gb-x-rp+m1_0'): a position where some names have the take
    number and others a word is misaligned, never a source; the voice stays together."""
    from tlstudio.core.data.grouping import find_name_token

    voices = ["en-gb+f5", "en-gb+m2", "en-gb-x-rp+m1", "en-us+f1", "en-us+f2", "en-us+m3"]
    paths = [f"/d/{word}/{voice}_{take}.wav" for word in ("yes", "no", "stop") for voice in voices for take in (0, 1)]
    labels = [i // 12 for i in range(len(paths))]
    token = find_name_token(paths, labels)
    assert token is not None
    key = [name.split("/")[-1].rsplit(".", 1)[0].replace("+", "-").replace("_", "-").split("-")[token.position]
           for name in paths]
    for voice in voices:  # every take of a voice shares its group
        assert len({k for k, p in zip(key, paths, strict=True) if f"/{voice}_" in p}) == 1, (voice, token)


def test_group_by_none_and_by_pattern(tmp_path: Path) -> None:
    root = _speakers(tmp_path / "d")
    plain = scan(root, val_split=0.25, seed=0, group_by="none")
    assert {_speaker(s.path) for s in plain.train} & {_speaker(s.path) for s in plain.val}  # speakers straddle
    pattern = scan(root, val_split=0.25, seed=0, group_by=r"^[a-z]+_([a-z]+)_")
    assert not {_speaker(s.path) for s in pattern.train} & {_speaker(s.path) for s in pattern.val}
    with pytest.raises(ConfigError, match="regular expression"):
        scan(root, group_by="([unclosed")


def test_group_by_folder_keeps_sub_folders_together(tmp_path: Path) -> None:
    made = make_image_folder(tmp_path / "made", classes=("a", "b"), per_class=24, size=(32, 32))
    root = tmp_path / "d"
    for label in ("a", "b"):
        for n, path in enumerate(sorted((made / label).iterdir())):
            session = root / label / f"session {n % 6}"  # nested folders inside a class folder
            session.mkdir(parents=True, exist_ok=True)
            path.rename(session / path.name)
    spec = scan(root, val_split=0.3, seed=1, group_by="folder")
    assert spec.classes == ["a", "b"] and len(spec.train) + len(spec.val) == 48
    sides = {}
    for side, samples in (("train", spec.train), ("val", spec.val)):
        for s in samples:
            sides.setdefault((s.label, Path(s.path).parent.name), set()).add(side)
    assert all(len(v) == 1 for v in sides.values()) and {"val"} in sides.values()


def test_copies_and_near_copies_never_straddle(shapes_dir: Path, tmp_path: Path) -> None:
    from PIL import Image

    root = Path(shutil.copytree(shapes_dir, tmp_path / "d"))
    original = root / "circles" / "circles_0003.jpg"
    for n in range(8):  # byte-identical copies under other names
        shutil.copy(original, root / "circles" / f"copy {n}.jpg")
    with Image.open(root / "squares" / "squares_0005.jpg") as image:  # resized and re-saved: not the same bytes
        for n in range(8):
            image.resize((90 - n, 68)).save(root / "squares" / f"small {n}.png")
    spec = scan(root, val_split=0.3, seed=2, check_file="auto")
    for family in (["circles_0003.jpg"] + [f"copy {n}.jpg" for n in range(8)],
                   ["squares_0005.jpg"] + [f"small {n}.png" for n in range(8)]):
        sides = {"train" if any(Path(s.path).name == name for s in spec.train) else "val" for name in family}
        assert len(sides) == 1, family
    assert spec.grouping["copies_merged"] >= 16


def test_train_and_test_without_val_draws_validation_from_train(tmp_path: Path) -> None:
    root = make_image_folder(tmp_path / "d", classes=("a", "b"), per_class=10, val_per_class=4, size=(32, 32),
                             layout="split")
    (root / "val").rename(root / "test")
    spec = scan(root, val_split=0.25, seed=0)
    assert spec.classes == ["a", "b"]  # not two classes called "test" and "train"
    assert spec.split_source == "drawn from train/"
    assert spec.sizes()["test"] == 8 and len(spec.train) + len(spec.val) == 20 and spec.val
    assert all("/train/" in s.path for s in spec.train + spec.val)
    assert all("/test/" in s.path for s in spec.test)


def test_split_folder_names_and_class_names_in_any_case(tmp_path: Path) -> None:
    root = make_image_folder(tmp_path / "d", classes=("Cats", "dogs"), per_class=4, val_per_class=2,
                             size=(32, 32), layout="split")
    (root / "train").rename(root / "Train")
    (root / "val").rename(root / "VALID")
    (root / "VALID" / "Cats").rename(root / "VALID" / "cats")
    (root / "VALID" / "dogs").rename(root / "VALID" / "DOGS")
    spec = scan(root)
    assert spec.split_source == "folders" and spec.classes == ["Cats", "dogs"]
    assert spec.counts("val") == {"Cats": 2, "dogs": 2}


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
    import random

    from tlstudio.core.data.spec import Sample

    sizes = [random.Random(n).randint(2, 6) for n in range(60)]
    samples = [Sample(f"c{c}/f{i}.jpg", c) for c, size in enumerate(sizes) for i in range(size)]
    train, val = stratified_split(samples, len(sizes), 0.1, seed=0)
    assert {s.label for s in val} == {s.label for s in train} == set(range(60))  # each class on both sides
    assert len(train) + len(val) == len(samples)


def test_a_copied_or_moved_folder_splits_the_same(shapes_dir: Path, tmp_path: Path) -> None:
    copy = Path(shutil.copytree(shapes_dir, tmp_path / "elsewhere" / "photos"))
    here, there = scan(shapes_dir, seed=5), scan(copy, seed=5)
    assert [Path(s.path).relative_to(shapes_dir) for s in here.val] == \
        [Path(s.path).relative_to(copy) for s in there.val]


def test_linked_split_folders_are_followed(tmp_path: Path) -> None:
    """A layout assembled from links (train/ and test/ pointing elsewhere) is read like real folders."""
    real = make_image_folder(tmp_path / "real", classes=("a", "b"), per_class=6, val_per_class=3, size=(32, 32),
                             layout="split")
    root = tmp_path / "linked"
    root.mkdir()
    (root / "train").symlink_to(real / "train", target_is_directory=True)
    (root / "test").symlink_to(real / "val", target_is_directory=True)
    spec = scan(root)
    assert spec.classes == ["a", "b"] and spec.sizes()["test"] == 6 and len(spec.train) + len(spec.val) == 12


def test_the_split_is_the_data_sets_and_changes_without_reading_the_files_again(shapes_dir: Path) -> None:
    """The window's Data step re-splits when the share, seed or grouping changes: no file is checked again, and
    the result is the split a fresh scan with those settings gives."""
    from tlstudio.core.data.split_stage import resplit

    checked: list[Path] = []

    def check(path: Path) -> None:
        checked.append(path)

    spec = scan(shapes_dir, val_split=0.2, seed=0, check_file=check)
    read = len(checked)
    other = resplit(spec, 0.5, 3, "none")
    assert len(checked) == read  # nothing read again
    fresh = scan(shapes_dir, val_split=0.5, seed=3, group_by="none", check_file=lambda _p: None)
    assert [s.path for s in other.val] == [s.path for s in fresh.val] and len(other.val) > len(spec.val)
    assert other.split_settings == {"val_split": 0.5, "seed": 3, "group_by": "none"}
    assert "contents" not in other.to_dict()  # never saved: dataset.json holds the split itself
