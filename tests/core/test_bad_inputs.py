"""Messy folders: training goes on without what cannot be used, names it, and never writes to the folder."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.helpers import make_bad_corpus, tree_digest
from tlstudio.core.data.scan import scan
from tlstudio.core.media.images import check_image, load_rgb
from tlstudio.core.store.runs import RunDir
from tlstudio.core.training import engine
from tlstudio.core.training import events as ev
from tlstudio.core.training.config import TrainConfig


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, str]]:
    root = tmp_path_factory.mktemp("messy")
    return root, make_bad_corpus(root)


def test_the_scan_skips_and_names_every_bad_file(corpus) -> None:
    root, must_skip = corpus
    spec = scan(root, val_split=0.25, check_file=check_image)
    reasons = {Path(item.path).name: item.reason for item in spec.skipped}
    assert set(reasons) == set(must_skip)
    for name, word in must_skip.items():
        assert word in reasons[name], (name, reasons[name])
    assert spec.classes == ["cats", "dogs", "fish", "lonely", "Ünïcödé dogs 🐶"]  # 'nothing' left out
    assert any("no usable files were left out: nothing" in w for w in spec.warnings)
    assert any("single file" in w and "lonely" in w for w in spec.warnings)
    assert any("not image files were ignored" in w for w in spec.warnings)
    assert any("outside any class folder" in w for w in spec.warnings)
    used = {Path(s.path).name for s in spec.train + spec.val}
    assert {"cmyk.jpg", "palette.png", "alpha.png", "grey alpha.png", "sixteen-bit.png", "grey.tif",
            "photo 1 ñ.jpg"} <= used
    assert not any("loop" in s.path for s in spec.train + spec.val)  # the loop was not followed twice


@pytest.mark.parametrize("name", ["cmyk.jpg", "palette.png", "alpha.png", "grey alpha.png", "sixteen-bit.png"])
def test_odd_image_modes_decode_to_8_bit_rgb(corpus, name: str) -> None:
    root, _ = corpus
    image = load_rgb(root / "Ünïcödé dogs 🐶" / name)
    assert image.mode == "RGB"
    if name == "sixteen-bit.png":  # scaled, not clipped to white
        lo, hi = image.convert("L").getextrema()
        assert lo < 10 and hi > 245


def test_training_on_the_messy_folder_completes_and_lists_what_was_skipped(corpus, tmp_path: Path) -> None:
    root, must_skip = corpus
    before = tree_digest(root)
    spec = scan(root, val_split=0.25, check_file=check_image)
    config = TrainConfig(data=str(root), backbone="mobilenet_v3_small", pretrained="none", epochs=2,
                         val_split=0.25, unfreeze="1", augment="light")
    events: list = []
    metrics = engine.train(spec, config, RunDir.create(tmp_path / "run", config.backbone), events.append)
    assert metrics["status"] == "completed"
    assert metrics["skipped_files"] == len(must_skip)
    listed = (tmp_path / "run" / "skipped.tsv").read_text(encoding="utf-8")
    assert all(name in listed for name in must_skip)
    assert not [e for e in events if isinstance(e, ev.Problem)]  # all caught by the scan, none mid-run
    assert tree_digest(root) == before
