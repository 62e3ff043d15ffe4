"""The decoding every consumer shares: training, validation, Evaluate, predict, and the exported model's
own `predict.py`, which ships a verbatim copy of this file (so it needs only PIL, NumPy and soundfile).

Keep it self-contained: no imports from the studio, no torch. What it guarantees:
- images: EXIF orientation applied; 16-bit (and 32-bit) greyscale scaled to 8 bits by its own range;
  palette, CMYK and greyscale converted; transparency composited on white; always 8-bit RGB;
- sound: mixed to mono, float32, resampled with a windowed-sinc filter whose length is bounded for any pair
  of rates, processed in chunks (memory stays flat however long the clip).
"""

from __future__ import annotations

import functools
import math

import numpy as np
from PIL import Image, ImageOps, PngImagePlugin

# A PNG may carry a large text chunk (an editor's history, an embedded profile): read it rather than
# calling the picture corrupt. Still bounded, so a metadata bomb stays refused.
PngImagePlugin.MAX_TEXT_CHUNK = max(PngImagePlugin.MAX_TEXT_CHUNK, 64 << 20)
PngImagePlugin.MAX_TEXT_MEMORY = max(PngImagePlugin.MAX_TEXT_MEMORY, 256 << 20)

ALPHA_BACKGROUND = (255, 255, 255)
RESAMPLE_ZEROS = 16  # zero crossings of the sinc on each side: the filter's quality
RESAMPLE_ROLLOFF = 0.945  # cut-off as a share of the lower Nyquist frequency (room for the transition band)
RESAMPLE_BETA = 8.6  # Kaiser window shape
_CHUNK = 1 << 15  # output samples computed at once


def open_rgb(path: str, min_side: int | None = None) -> Image.Image:
    """Decode to 8-bit RGB. `min_side` lets JPEGs decode at a reduced scale that still covers it (faster)."""
    with Image.open(path) as image:
        if min_side and image.format == "JPEG":
            image.draft("RGB", (min_side, min_side))
        return to_rgb(ImageOps.exif_transpose(image))


def to_rgb(image: Image.Image) -> Image.Image:
    if image.mode == "RGB":
        image.load()
        return image
    if image.mode in ("I;16", "I;16B", "I;16L", "I;16N", "I", "F"):
        # 16/32-bit greyscale: scale by the image's own range instead of clipping everything to white
        values = np.asarray(image, dtype=np.float64)
        lo, hi = float(values.min()), float(values.max())
        scaled = (values - lo) * (255.0 / (hi - lo)) if hi > lo else np.zeros_like(values)
        image = Image.fromarray(np.clip(np.rint(scaled), 0, 255).astype(np.uint8), mode="L")
    if image.mode in ("RGBA", "LA", "P", "PA", "RGBa", "La") or "transparency" in image.info:
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (*ALPHA_BACKGROUND, 255))
        return Image.alpha_composite(background, rgba).convert("RGB")
    return image.convert("RGB")


def image_array(image: Image.Image) -> np.ndarray:
    """(3, H, W) float32 in [0, 1]: the exported models' input."""
    return np.asarray(image, dtype=np.float32).transpose(2, 0, 1) / 255.0


def read_mono(path: str, max_frames: int | None = None) -> tuple[np.ndarray, int]:
    """(float32 mono samples, sample rate); at most `max_frames` frames are read. Channels are mixed block
    by block, so an hour of stereo costs the memory of the mono result, not of the file's channels."""
    import soundfile as sf

    with sf.SoundFile(path) as handle:
        frames = handle.frames if max_frames is None else min(handle.frames, max_frames)
        rate = int(handle.samplerate)
        mono = np.empty(frames, dtype=np.float32)
        done = 0
        while done < frames:
            block = handle.read(min(1 << 18, frames - done), dtype="float32", always_2d=True)
            if not len(block):
                break
            mono[done : done + len(block)] = block.mean(axis=1, dtype=np.float32)
            done += len(block)
    return mono[:done], rate


def resample(wave: np.ndarray, orig: int, new: int) -> np.ndarray:
    """Band-limited resampling by a Kaiser-windowed sinc, read from a table of 1,024 sub-sample phases
    (linearly interpolated between phases; error below 1e-5 of full scale).

    Cost and memory grow with the clip's length only: the filter has 2 x RESAMPLE_ZEROS taps (more when
    lowering the rate, to cut the band) whatever the ratio, so 44,099 Hz costs what 44,100 Hz costs, and the
    output is computed in chunks.
    """
    wave = np.asarray(wave, dtype=np.float32)
    if orig == new or wave.size == 0:
        return wave.copy()
    ratio = new / orig
    table, half = _kernel_table(min(1.0, ratio))
    n_out = math.ceil(wave.size * ratio)
    padded = np.concatenate([np.zeros(half, np.float32), wave, np.zeros(half + 1, np.float32)])
    offsets = np.arange(-half + 1, half + 1)
    phases = table.shape[0] - 1
    out = np.empty(n_out, dtype=np.float32)
    for start in range(0, n_out, _CHUNK):
        positions = np.arange(start, min(start + _CHUNK, n_out), dtype=np.float64) / ratio
        base = np.floor(positions).astype(np.int64)
        phase = (positions - base) * phases
        index = np.minimum(phase.astype(np.int64), phases - 1)
        weight = (phase - index).astype(np.float32)[:, None]
        kernel = table[index] * (1.0 - weight) + table[index + 1] * weight
        samples = padded[base[:, None] + offsets[None, :] + half]
        out[start : start + len(positions)] = np.einsum("ij,ij->i", samples, kernel)
    return out


@functools.lru_cache(maxsize=8)
def _kernel_table(scale: float, phases: int = 1024) -> tuple[np.ndarray, int]:
    """(phases + 1, taps) filter values for fractional positions 0, 1/phases, ..., 1; and the half width."""
    cutoff = RESAMPLE_ROLLOFF * scale
    half = math.ceil(RESAMPLE_ZEROS / cutoff)
    offsets = np.arange(-half + 1, half + 1)
    distance = np.linspace(0.0, 1.0, phases + 1)[:, None] - offsets[None, :]
    window = np.i0(RESAMPLE_BETA * np.sqrt(np.clip(1.0 - (distance / (half + 1)) ** 2, 0.0, 1.0)))
    table = cutoff * np.sinc(distance * cutoff) * window / np.i0(RESAMPLE_BETA)
    return table.astype(np.float32), half


def window_starts(n: int, length: int, hop: int) -> list[int]:
    """Where the sliding windows of a clip of n samples start, after `pad_for_windows`."""
    if n <= length:
        return [0]
    return list(range(0, n - length + 1, hop))


def pad_for_windows(wave: np.ndarray, length: int, hop: int) -> np.ndarray:
    """Short clips: zero-padded to one window, centred. Long ones: zeros appended so the last window ends
    exactly at (or just past) the clip's end: every sample is heard, and no window is repeated."""
    n = wave.shape[-1]
    if n <= length:
        left = (length - n) // 2
        return np.pad(wave, [(0, 0)] * (wave.ndim - 1) + [(left, length - n - left)])
    extra = (hop - (n - length) % hop) % hop
    return np.pad(wave, [(0, 0)] * (wave.ndim - 1) + [(0, extra)])
