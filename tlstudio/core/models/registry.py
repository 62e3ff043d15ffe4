"""Every backbone the studio offers, by name: image backbones and sound encoders register here.

A leaf with no studio imports, so entries (catalogue.py, audio_encoders.py) register themselves without
any module importing another; `tlstudio.core.models` imports both when the package loads.
"""

from __future__ import annotations

from typing import Any

from tlstudio.core.errors import ConfigError

_ENTRIES: dict[str, Any] = {}


def register(*entries: Any) -> None:
    for entry in entries:
        _ENTRIES[entry.name] = entry


# The default backbone and fine-tuning depth per kind of data, chosen by measurement on real recordings
# (benchmarks/bench_sound_real.py, README "Sound"). Short clips (words, commands: each fits in one window)
# need YAMNet fine-tuned: FSDD spoken digits 0.37 frozen vs 0.93 fine-tuned for an unheard speaker, and
# 0.29 vs 0.88 with only 40 clips a digit. Long recordings (environmental sounds, music: several windows a
# clip) are better frozen, where each clip's embedding pools all its windows, than fine-tuned on one random
# window per clip (ESC-10 0.975 frozen vs 0.90; instruments likewise).
DEFAULT_SETTINGS = {
    "image": {"backbone": "mobilenet_v2", "unfreeze": "0"},
    "audio": {"backbone": "yamnet", "unfreeze": "all"},
}
DEFAULT_BACKBONE = DEFAULT_SETTINGS["image"]["backbone"]  # the one definition (config, self-test, window)
LONG_CLIP_WINDOWS = 2.0  # clips longer than this many windows (typically) count as long recordings


def default_backbone(modality: str) -> str:
    """The backbone a new run on this kind of data starts with ("image" or "audio")."""
    return DEFAULT_SETTINGS.get(modality, DEFAULT_SETTINGS["image"])["backbone"]


def default_settings(modality: str, clip_seconds: float | None = None, window_seconds: float = 1.0) -> dict[str, str]:
    """The settings that go with the default backbone for this kind of data (backbone, unfreeze); for sound,
    `clip_seconds` (the typical clip's length, from the scan) decides between fine-tuning and frozen."""
    settings = dict(DEFAULT_SETTINGS.get(modality, DEFAULT_SETTINGS["image"]))
    if modality == "audio" and clip_seconds is not None and clip_seconds > LONG_CLIP_WINDOWS * window_seconds:
        settings["unfreeze"] = "0"
    return settings


def pretraining_of(name: str | None, source: str | None = "imagenet") -> str:
    """What a run's backbone learnt from, in words: its own data set (ImageNet, AudioSet, LibriSpeech), "none
    (from scratch)", or the weights file it was given."""
    if source == "none":
        return "none (from scratch)"
    if source not in (None, "", "imagenet"):  # "imagenet" is the config's word for "the backbone's own weights"
        return f"a weights file ({source})"
    entry = _ENTRIES.get(name or "")
    return getattr(entry, "pretraining", "unknown").split(" (")[0] if entry is not None else "unknown"


def all_entries() -> dict[str, Any]:
    """Image backbones first, then the sound encoders (registration order)."""
    return dict(_ENTRIES)


def get_entry(name: str) -> Any:
    try:
        return _ENTRIES[name]
    except KeyError:
        known = ", ".join(_ENTRIES)
        raise ConfigError(f"Unknown backbone '{name}'.", f"Choose one of: {known}.") from None
