"""Image decoding: fast (JPEG draft mode), orientation-correct (EXIF), always 8-bit RGB."""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from PIL import Image, ImageOps, UnidentifiedImageError

from tlstudio.core.media import portable

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
        require_regular_file(path, ImageDecodeError)
    except ImageDecodeError as exc:
        return str(exc)
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
    """Decode to RGB (portable.open_rgb: EXIF, alpha, 16-bit and palette handled as the exports do)."""
    require_regular_file(path, ImageDecodeError)
    with _decoding():
        return portable.open_rgb(str(path), min_side)


def perceptual_hash(path: str | Path) -> int | None:
    """A 64-bit difference hash (dHash): resized or re-saved copies of a photo get equal or nearly equal
    hashes, so the scan can keep copies on one side of the split. None when the file cannot be decoded."""
    try:
        with _decoding(), Image.open(path) as image:
            if image.format == "JPEG":
                image.draft("L", (64, 64))
            grey = portable.to_rgb(ImageOps.exif_transpose(image)).convert("L")
            grey = grey.resize((9, 8), Image.Resampling.BILINEAR)
    except ImageDecodeError:
        return None
    pixels = list(grey.getdata())
    bits = 0
    for row in range(8):
        for col in range(8):
            bits = (bits << 1) | (pixels[row * 9 + col] > pixels[row * 9 + col + 1])
    return bits


def require_regular_file(path: str | Path, error: type[Exception]) -> None:
    """A named pipe or a device would block a decoder forever: refuse anything but a regular file."""
    import stat

    try:
        mode = Path(path).stat().st_mode
    except FileNotFoundError as exc:
        raise error("file not found (deleted or moved?)") from exc
    except OSError as exc:
        raise error(f"cannot be read ({exc.strerror or exc})") from exc
    if not stat.S_ISREG(mode):
        raise error("not a regular file (a pipe, device or socket)")
