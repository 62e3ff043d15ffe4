"""Sound decoding: any format libsndfile reads (wav, flac, ogg, mp3), mixed to mono, resampled, windowed.

Decoding uses soundfile (torchaudio 2.11 no longer decodes files); resampling is portable.resample, the
bounded windowed-sinc filter the exported predict.py ships too.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from tlstudio.core.media import portable

SILENCE_PEAK = 10 ** (-60 / 20)  # -60 dBFS: below this a clip is treated as silent
SCAN_BLOCK = 1 << 18  # frames read at a time by the scan's check
MAX_SAMPLE = 64.0  # float files may exceed 1.0 a little (+36 dBFS); beyond this it is damage, not sound


class AudioDecodeError(Exception):
    """A file that cannot be used as sound; the message says why in plain words."""


@dataclass(frozen=True)
class AudioSettings:
    """Saved with every run and export: how waveforms become model inputs."""

    sample_rate: int = 16000
    window_seconds: float = 1.0
    hop_seconds: float = 0.5  # sliding windows over long clips at evaluation and prediction
    n_mels: int = 128
    n_fft: int = 1024
    mel_hop: int = 160
    top_db: float = 80.0

    @property
    def window(self) -> int:
        return round(self.sample_rate * self.window_seconds)

    @property
    def hop(self) -> int:
        return max(1, round(self.sample_rate * self.hop_seconds))

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> AudioSettings:
        known = cls.__dataclass_fields__
        return cls(**{k: v for k, v in data.items() if k in known})


@contextmanager
def _decoding(path: str | Path | None = None) -> Iterator[None]:
    """Errors from reading a sound file, as AudioDecodeError with the reason a user reads: for a file whose bytes
    are not what its name says (a phone's AAC memo named .mp3), what they are (sniff.py), not libsndfile's words."""
    import soundfile as sf

    from tlstudio.core.media.sniff import content_kind, misnamed

    try:
        yield
    except FileNotFoundError as exc:
        raise AudioDecodeError("file not found (deleted or moved?)") from exc
    except PermissionError as exc:
        raise AudioDecodeError("cannot be read (permission denied)") from exc
    except (sf.LibsndfileError, RuntimeError, OSError, ValueError) as exc:
        wrong = misnamed(path) if path is not None else None
        if wrong:
            raise AudioDecodeError(f"{wrong}: a format this studio cannot read yet") from exc
        kind = content_kind(path) if path is not None else None
        if kind and not kind.endswith(("audio", "media", "(M4A)", "(M4B)", "(ADTS)")):
            raise AudioDecodeError(f"not a sound file: its bytes are {kind}") from exc
        detail = str(exc).replace("(possibly a pipe?)", "").strip().rstrip(":").strip()
        if "does not exist or is not a regular file" in detail:  # libsndfile's words for "not a format I know"
            detail = f"{kind or 'an unknown format'} that libsndfile cannot read"
        raise AudioDecodeError(f"not a readable sound file (damaged, or not a sound format: {detail})") from exc


def check_audio(path: Path) -> str | None:
    """For the scan: a reason to skip the file (unreadable, empty, silent, corrupt values), or None.

    The whole clip is read, in blocks (memory stays flat for an hour-long file): a clip whose sound starts
    after a minute is not silent, and a NaN or an absurd value late in a clip is found before training.
    """
    import soundfile as sf

    from tlstudio.core.media.images import require_regular_file

    try:
        require_regular_file(path, AudioDecodeError)
    except AudioDecodeError as exc:
        return str(exc)
    try:
        with _decoding(path):
            if path.stat().st_size == 0:
                return "empty file (0 bytes)"
            peak = 0.0
            frames = 0
            with sf.SoundFile(str(path)) as handle:
                for block in handle.blocks(blocksize=SCAN_BLOCK, dtype="float32", always_2d=True):
                    frames += len(block)
                    if not np.isfinite(block).all():
                        return "corrupt samples (not finite numbers)"
                    if block.size:
                        peak = max(peak, float(np.abs(block).max()))
            if frames == 0:
                return "no audio in the file (0 samples)"
    except AudioDecodeError as exc:
        return str(exc)
    if peak > MAX_SAMPLE:
        return f"corrupt samples (values up to {peak:.3g}; sound lies between -1 and 1)"
    if peak < SILENCE_PEAK:
        return "silent (nothing above -60 dBFS)"
    return None


def checked_samples(data: np.ndarray) -> np.ndarray:
    """Decoded samples must be finite and not absurd (a file may change after the scan)."""
    if data.size and (not np.isfinite(data).all() or float(np.abs(data).max()) > MAX_SAMPLE):
        raise AudioDecodeError("corrupt samples (not finite, or far outside -1..1)")
    return data


def load_mono(path: str | Path, sample_rate: int):
    """Float32 mono waveform tensor at `sample_rate` (portable.py: the same arithmetic as the exports)."""
    import torch

    from tlstudio.core.media.images import require_regular_file

    require_regular_file(path, AudioDecodeError)
    with _decoding(path):
        data, rate = portable.read_mono(str(path))
    if data.shape[0] == 0:
        raise AudioDecodeError("no audio in the file (0 samples)")
    checked_samples(data)
    if rate != sample_rate:
        data = portable.resample(data, rate, sample_rate)
    return torch.from_numpy(data)


def typical_seconds(paths: list[str], most: int = 101) -> float | None:
    """The median length of up to `most` evenly spread clips, from their headers (no decoding): whether a
    folder holds short clips (words) or long recordings decides the default depth (registry.default_settings)."""
    import soundfile as sf

    if not paths:
        return None
    picked = np.unique(np.linspace(0, len(paths) - 1, min(len(paths), most)).round().astype(int))
    lengths = []
    for path in (paths[i] for i in picked):  # spread over the whole list: it is sorted by class
        try:
            lengths.append(sf.info(path).duration)
        except (RuntimeError, OSError, ValueError):  # soundfile.LibsndfileError is a RuntimeError
            continue
    return float(np.median(lengths)) if lengths else None


def fit_window(wave, length: int, offset: int | None = None):
    """Cut or zero-pad to `length` samples: centred unless an offset (a random time shift) is given."""
    import torch

    n = wave.shape[-1]
    if n >= length:
        start = (n - length) // 2 if offset is None else min(max(offset, 0), n - length)
        return wave[..., start : start + length]
    pad = length - n
    left = pad // 2 if offset is None else min(max(offset, 0), pad)
    return torch.nn.functional.pad(wave, (left, pad - left))


def sliding_windows(wave, length: int, hop: int):
    """(W, length) windows every `hop` over the clip padded by `portable.pad_for_windows`: every sample is
    heard, no window repeats, a short clip gives one centred window. The exports compute the same."""
    import torch

    padded = torch.from_numpy(portable.pad_for_windows(wave.numpy(), length, hop))
    return padded.unfold(-1, length, hop)
