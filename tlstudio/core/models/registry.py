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


def all_entries() -> dict[str, Any]:
    """Image backbones first, then the sound encoders (registration order)."""
    return dict(_ENTRIES)


def get_entry(name: str) -> Any:
    try:
        return _ENTRIES[name]
    except KeyError:
        known = ", ".join(_ENTRIES)
        raise ConfigError(f"Unknown backbone '{name}'.", f"Choose one of: {known}.") from None
