"""Generated sound folders for tests and benchmarks: tones/chirps/noise, and spoken words by many voices.

Speech comes from espeak-ng (installed by scripts/setup.sh --test); a "speaker" is a voice (accent and
variant) with its own pitch and speed, so speaker-disjoint splits can be measured.
"""

from __future__ import annotations

import itertools
import random
import shutil
import subprocess
from pathlib import Path

import numpy as np

WORDS = ("yes", "no", "up", "down", "left", "right", "on", "off", "stop", "go")
ACCENTS = ("en-us", "en-gb", "en-gb-scotland", "en-029", "en-gb-x-rp", "en-us-nyc", "en-gb-x-gbclan",
           "en-gb-x-gbcwmd")
VARIANTS = ("m1", "m2", "m3", "m4", "m5", "m6", "m7", "f1", "f2", "f3", "f4", "f5")


def _write(path: Path, wave: np.ndarray, rate: int) -> None:
    import soundfile as sf

    sf.write(str(path), wave.astype(np.float32), rate)


def make_sound_folder(root: str | Path, per_class: int = 12, rate: int = 22050, seconds: float = 1.0,
                      seed: int = 0, formats: tuple[str, ...] = (".wav", ".flac", ".ogg")) -> Path:
    """Classes: tone (steady pitch), chirp (rising pitch), noise (filtered noise bursts); varied levels and
    lengths, with background noise, saved in several formats and sample rates."""
    root = Path(root)
    rng = np.random.default_rng(seed)
    for kind in ("tone", "chirp", "noise"):
        (root / kind).mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            length = seconds * rng.uniform(0.6, 1.8)
            sr = int(rng.choice([rate, 16000, 44100]))
            t = np.arange(int(length * sr)) / sr
            if kind == "tone":
                wave = np.sin(2 * np.pi * rng.uniform(300, 1200) * t)
            elif kind == "chirp":
                f0, f1 = rng.uniform(200, 500), rng.uniform(1500, 3000)
                wave = np.sin(2 * np.pi * (f0 * t + (f1 - f0) * t**2 / (2 * length)))
            else:
                wave = np.convolve(rng.standard_normal(len(t)), np.ones(8) / 8, mode="same")
                wave *= (np.sin(2 * np.pi * rng.uniform(2, 6) * t) > 0)
            wave = wave / (np.abs(wave).max() + 1e-9) * rng.uniform(0.1, 0.9)
            wave += rng.standard_normal(len(t)) * 0.01
            _write(root / kind / f"{kind}_{i:03d}{formats[i % len(formats)]}", wave, sr)
    return root


def speakers(count: int, seed: int = 0) -> list[dict]:
    rng = random.Random(seed)
    voices = list(itertools.product(ACCENTS, VARIANTS))
    rng.shuffle(voices)
    return [{"id": f"{accent}+{variant}", "voice": f"{accent}+{variant}", "pitch": rng.randint(25, 75),
             "speed": rng.randint(130, 200)} for accent, variant in voices[:count]]


def say(text: str, speaker: dict, path: Path, jitter: random.Random) -> None:
    if shutil.which("espeak-ng") is None:
        raise RuntimeError("espeak-ng is not installed; scripts/setup.sh --test installs it")
    pitch = min(99, max(0, speaker["pitch"] + jitter.randint(-8, 8)))
    speed = speaker["speed"] + jitter.randint(-15, 15)
    subprocess.run(["espeak-ng", "-v", speaker["voice"], "-p", str(pitch), "-s", str(speed), "-w", str(path), text],
                   check=True, capture_output=True)


def make_speech_folder(root: str | Path, words: tuple[str, ...] = WORDS, n_speakers: int = 40, repeats: int = 3,
                       seed: int = 0, held_out_speakers: int = 0) -> tuple[Path, list[str], list[str]]:
    """One folder per word. With held_out_speakers > 0 the layout is train/ and val/, split by speaker
    (val holds only voices never heard in train). Returns (root, train speakers, held-out speakers)."""
    root = Path(root)
    people = speakers(n_speakers + held_out_speakers, seed)
    heard, unheard = people[:n_speakers], people[n_speakers:]
    jitter = random.Random(seed + 1)
    for group, split in ((heard, "train"), (unheard, "val")):
        for speaker in group:
            for word in words:
                folder = (root / split / word) if held_out_speakers else (root / word)
                folder.mkdir(parents=True, exist_ok=True)
                for r in range(repeats):
                    say(word, speaker, folder / f"{speaker['id']}_{r}.wav", jitter)
    return root, [p["id"] for p in heard], [p["id"] for p in unheard]
