"""The vocabulary every model module shares: blocks (what "unfreeze K" counts) and layouts.

A leaf: it imports nothing of the studio, so the catalogue, the audio encoders, weights and freezing
can all use it without importing each other.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Block:
    label: str
    prefixes: tuple[str, ...]

    def owns(self, parameter_name: str) -> bool:
        return any(parameter_name == p or parameter_name.startswith(p) for p in self.prefixes)


@dataclass(frozen=True)
class Layout:
    blocks: list[Block]
    classifier: str  # attribute path of the final Linear, replaced by the new head
    feature_dim: int
