"""Helpers shared by tests."""

from __future__ import annotations

import hashlib
from pathlib import Path


def tree_digest(root: Path) -> str:
    """A hash of every path, size, mtime and content below root: proves a folder was not written to."""
    digest = hashlib.sha256()
    for path in sorted(root.rglob("*")):
        stat = path.lstat()
        digest.update(f"{path.relative_to(root)}|{stat.st_size}|{stat.st_mtime_ns}".encode())
        if path.is_file() and not path.is_symlink():
            digest.update(path.read_bytes())
    return digest.hexdigest()


def make_bad_corpus(root: Path) -> dict[str, str]:
    """A messy folder like real ones: good photos plus every kind of trouble the scan must survive.

    Returns {file name: a word the skip reason must contain} for the files that must be skipped.
    """
    import os

    from PIL import Image

    from tlstudio.demo import make_image_folder

    make_image_folder(root, classes=("cats", "dogs", "fish"), per_class=8, size=(64, 48), seed=9)
    cats, dogs = root / "cats", root / "dogs"
    good = (cats / "cats_0000.jpg").read_bytes()
    must_skip: dict[str, str] = {}
    # broken files
    (cats / "zero.jpg").write_bytes(b"")
    must_skip["zero.jpg"] = "empty"
    (cats / "text.png").write_text("this is a text file called .png")
    must_skip["text.png"] = "not an image"
    (cats / "truncated.jpg").write_bytes(good[: len(good) // 3])
    must_skip["truncated.jpg"] = "truncated"
    (dogs / "garbage.webp").write_bytes(os.urandom(4096))
    must_skip["garbage.webp"] = "not an image"
    bomb = Image.new("1", (20_000, 10_000))  # 200 Mpx: over PIL's decompression-bomb limit, tiny on disk
    bomb.save(dogs / "bomb.png")
    must_skip["bomb.png"] = "too large"
    # files and folders that are not data
    (cats / "notes.txt").write_text("shopping list")
    (cats / "report.pdf").write_bytes(b"%PDF-1.4 not really")
    (root / "README.md").write_text("loose file at the top")
    (root / "stray.jpg").write_bytes(good)  # an image outside any class folder
    for hidden in (".thumbs", "__MACOSX", ".git"):
        (root / hidden).mkdir()
        (root / hidden / "x.jpg").write_bytes(good)
    (cats / ".DS_Store").write_bytes(b"\0\0")
    (cats / "._cats_0000.jpg").write_bytes(b"\0resource fork")
    # a symlink loop inside a class folder
    os.symlink(cats, cats / "loop")
    # unicode and spaces in names; odd but valid image modes that must be used, not skipped
    odd = root / "Ünïcödé dogs 🐶"
    odd.mkdir()
    base = Image.open(cats / "cats_0001.jpg")
    base.save(odd / "photo 1 ñ.jpg")
    base.convert("CMYK").save(odd / "cmyk.jpg")
    base.convert("P").save(odd / "palette.png")
    base.convert("RGBA").save(odd / "alpha.png")
    base.convert("LA").save(odd / "grey alpha.png")
    Image.fromarray(__import__("numpy").linspace(0, 65535, 64 * 48, dtype="uint16").reshape(48, 64)).save(
        odd / "sixteen-bit.png")
    base.convert("L").save(odd / "grey.tif")
    # a class with one file and a class with none
    (root / "lonely").mkdir()
    base.save(root / "lonely" / "only.jpg")
    (root / "nothing").mkdir()
    (root / "nothing" / "empty.jpg").write_bytes(b"")
    must_skip["empty.jpg"] = "empty"
    return must_skip
