"""Everything a run does differently on many processes, behind one object, so the loop has no branches on it.

One process (`World` of size 1) makes every method the identity: no gather, no share, no barrier. Launched
on N processes (distributed.py), each process trains and scores its share of the files; rank 0 alone writes.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import torch
from torch import nn

from tlstudio.core.control import Control
from tlstudio.core.training import distributed, mapped
from tlstudio.core.training.embedding import Embedded

T = TypeVar("T")


@dataclass(frozen=True)
class Together:
    world: distributed.World
    device: torch.device

    @property
    def active(self) -> bool:
        return self.world.active

    @property
    def is_main(self) -> bool:
        """The process that writes the run folder and prints."""
        return self.world.is_main

    @property
    def size(self) -> int:
        return self.world.size

    @property
    def interruptible(self) -> bool:
        """Alone, a stop is checked at every batch; together only a training step's agreement stops all (a
        process leaving in the middle of validation or extraction would leave the others waiting)."""
        return not self.world.active

    @property
    def can_restart(self) -> bool:
        """After running out of memory one process cannot start again alone."""
        return not self.world.active

    def control(self, control: Control) -> Control:
        """The control for work that must not stop half-way together (extraction)."""
        return control if self.interruptible else Control()

    def batch(self, batch_size: int) -> int:
        return distributed.per_process_batch(batch_size, self.world)

    def share(self, count: int) -> list[int]:
        """This process's indices of `count` items: all of them alone."""
        return distributed.shard(count, self.world)

    def mine(self, items: Sequence[T]) -> list[T]:
        return [items[i] for i in self.share(len(items))] if self.active else list(items)

    def wrap(self, module: nn.Module) -> nn.Module:
        return distributed.wrap(module, self.world, self.device)

    def barrier(self) -> None:
        distributed.barrier(self.world)

    def exchange(self, share: list[int], part: Embedded) -> Embedded:
        """A split's embeddings from every process's share, in file order."""
        return merge_shares(distributed.gather((share, part), self.world)) if self.active else part

    def pooled_outputs(self, outputs: dict[str, Any], share: list[int]) -> tuple[torch.Tensor, torch.Tensor] | None:
        """(probabilities, labels) of every process's validation share; None when no process scored a file. Only
        together: alone, the pass's own loss and score are already over every file."""
        mine = (outputs["probabilities"], outputs["labels"], [share[i] for i in outputs["indices"].tolist()])
        parts = [part for part in distributed.gather(mine, self.world) if len(part[1])]
        if not parts:
            return None
        return torch.cat([p for p, _, _ in parts]), torch.cat([labels for _, labels, _ in parts])


def merge_shares(parts: list[tuple[list[int], Embedded]]) -> Embedded:
    """One split's embeddings from every process's share (indices into the split), in file order."""
    rows: dict[int, tuple[torch.Tensor, Any]] = {}
    bad: list[tuple[int, str]] = []
    for share, part in parts:
        bad.extend((share[index], reason) for index, reason in part.bad)
        if not part.kept:
            continue
        for features, kept, label in zip(torch.split(part.features, part.counts), part.kept, part.labels,
                                         strict=True):
            rows[share[kept]] = (features, label)
    kept = sorted(rows)
    dim = int(rows[kept[0]][0].shape[1]) if kept else 0
    features = mapped.spill((rows[i][0] for i in kept), dim)
    labels = torch.stack([rows[i][1] for i in kept]) if kept else torch.empty(0, dtype=torch.long)
    return Embedded(features, [int(rows[i][0].shape[0]) for i in kept], labels, kept, sorted(bad))
