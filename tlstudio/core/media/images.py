"""Image decoding: fast (JPEG draft mode), orientation-correct (EXIF), always 8-bit RGB."""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from PIL import Image, ImageOps, UnidentifiedImageError

# Decompression-bomb guard: PIL warns past this many pixels and refuses past twice as many.
MAX_PIXELS = 89_478_485


class ImageDecodeError(Exception):
    """A file that cannot be used as an image; the message says why in plain words."""


@contextmanager
def _decoding() -> Iterator[None]:
    """Errors from opening or decoding an image, as ImageDecodeError with the reason a user reads."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            yield
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise ImageDecodeError("image too large (possible decompression bomb)") from exc
    except FileNotFoundError as exc:
        raise ImageDecodeError("file not found (deleted or moved?)") from exc
    except PermissionError as exc:
        raise ImageDecodeError("cannot be read (permission denied)") from exc
    except UnidentifiedImageError as exc:
        raise ImageDecodeError("not an image (the content does not match its name)") from exc
    except (OSError, ValueError, SyntaxError) as exc:
        raise ImageDecodeError(f"corrupt or truncated image ({exc})") from exc


def check_image(path: Path) -> str | None:
    """A cheap header check for the scan: a reason to skip the file, or None."""
    try:
        size = path.stat().st_size
    except OSError as exc:
        return f"cannot be read ({exc.strerror or exc})"
    if size == 0:
        return "empty file (0 bytes)"
    try:
        with _decoding(), Image.open(path) as image:
            width, height = image.size
    except ImageDecodeError as exc:
        return str(exc)
    if width * height > MAX_PIXELS:
        return f"image too large ({width}x{height} pixels)"
    if width < 1 or height < 1:
        return "image has no pixels"
    return None


def load_rgb(path: str | Path, min_side: int | None = None) -> Image.Image:
    """Decode to RGB. `min_side` lets JPEGs decode at a reduced scale that still covers it (3x faster)."""
    with _decoding(), Image.open(path) as image:
        if min_side and image.format == "JPEG":
            image.draft("RGB", (min_side, min_side))
        return _to_rgb(ImageOps.exif_transpose(image))


def _to_rgb(image: Image.Image) -> Image.Image:
    if image.mode == "RGB":
        image.load()
        return image
    if image.mode in ("I;16", "I;16B", "I;16L", "I"):
        # 16/32-bit greyscale: scale to 8 bits instead of clipping everything to white.
        image = image.convert("I")
        lo, hi = image.getextrema()
        scale = 255.0 / (hi - lo) if hi > lo else 1.0
        image = image.point(lambda value: (value - lo) * scale).convert("L")
    if image.mode in ("RGBA", "LA", "P", "PA") or "transparency" in image.info:
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(background, rgba).convert("RGB")
    return image.convert("RGB")
