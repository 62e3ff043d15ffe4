"""Seeds derived from (run seed, phase, epoch, item): what makes a resumed run repeat an uninterrupted one.

Nothing random depends on state carried from one epoch to the next (a generator's position, a worker
process's draw), so an epoch can be replayed from its number alone, in any process, with any number of
DataLoader workers.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from contextlib import contextmanager


def derive_seed(*parts: int | str) -> int:
    text = "/".join(str(part) for part in parts).encode()
    return int.from_bytes(hashlib.blake2b(text, digest_size=8).digest(), "big") & (2**63 - 1)


@contextmanager
def seeded_torch(seed: int | None) -> Iterator[None]:
    """Run a block with torch's CPU generator seeded, restoring the caller's generator afterwards."""
    if seed is None:
        yield
        return
    import torch

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        yield
