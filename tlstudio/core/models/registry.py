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
# (benchmarks/bench_sound_real.py; FSDD spoken digits and ESC-10 environmental sounds). For sound, frozen
# features are not enough (FSDD, unheard speakers: 0.33-0.38 frozen vs 0.93 fine-tuned), and YAMNet
# fine-tunes fast on a CPU (27 s per epoch for 2,000 clips) where the log-mel image route is slower.
DEFAULT_BACKBONES = {"image": "mobilenet_v2", "audio": "yamnet"}
DEFAULT_SETTINGS = {
    "image": {"backbone": "mobilenet_v2", "unfreeze": "0"},
    "audio": {"backbone": "yamnet", "unfreeze": "all"},
}


def default_backbone(modality: str) -> str:
    """The backbone a new run on this kind of data starts with ("image" or "audio")."""
    return DEFAULT_BACKBONES.get(modality, DEFAULT_BACKBONES["image"])


def default_settings(modality: str) -> dict[str, str]:
    """The settings that go with the default backbone for this kind of data (backbone, unfreeze)."""
    return dict(DEFAULT_SETTINGS.get(modality, DEFAULT_SETTINGS["image"]))


def all_entries() -> dict[str, Any]:
    """Image backbones first, then the sound encoders (registration order)."""
    return dict(_ENTRIES)


def get_entry(name: str) -> Any:
    try:
        return _ENTRIES[name]
    except KeyError:
        known = ", ".join(_ENTRIES)
        raise ConfigError(f"Unknown backbone '{name}'.", f"Choose one of: {known}.") from None
