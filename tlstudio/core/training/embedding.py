"""The frozen backbone's pass over a split: one embedding per window of each file, cached as it goes."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch

from tlstudio.core.control import Cancelled, Control
from tlstudio.core.data.spec import Sample, target_tensor
from tlstudio.core.models.transfer_model import TransferModel, chunked
from tlstudio.core.training import mapped
from tlstudio.core.training.feature_cache import STORE_DTYPE, Bucket, file_key

APPEND_EVERY = 256  # files per cache shard while extracting


@dataclass
class Embedded:
    """A split's embeddings: `features` holds every window's row; `counts[i]` rows belong to file kept[i].

    `features` is float16 (the cache's dtype, cold or warm) and, for a split of any size, memory-mapped
    (mapped.py): readers take rows or slices and make them float32 as they go."""

    features: torch.Tensor  # (windows, dim) float16
    counts: list[int]
    labels: torch.Tensor  # (files,)
    kept: list[int]  # indices into the sample list
    bad: list[tuple[int, str]]  # (index, reason) for files that failed

    def window_labels(self) -> torch.Tensor:
        return self.labels.repeat_interleave(torch.tensor(self.counts, dtype=torch.long))


def embed(
    model: TransferModel,
    samples: Sequence[Sample],
    loader_factory: Callable[[Sequence[Sample]], torch.utils.data.DataLoader],
    device: torch.device,
    bucket: Bucket,
    control: Control,
    progress: Callable[[int, int], None] | None = None,
    autocast_dtype: torch.dtype | None = None,
) -> Embedded:
    """Rows come from the bucket where it has them and from the backbone for the rest, which go into the
    bucket as they are made; files the bucket cannot take (no key, a disk that refused) are held here."""
    known = bucket.index()
    keys = [file_key(sample.path) for sample in samples]
    todo = [index for index, key in enumerate(keys) if key is None or key not in known]
    held: dict[int, torch.Tensor] = {}
    bad: list[tuple[int, str]] = []
    total = len(samples)
    if progress:
        progress(total - len(todo), total)
    if todo:
        model.eval()
        loader = loader_factory([samples[index] for index in todo])
        done = total - len(todo)
        pending: dict[int, torch.Tensor] = {}
        try:
            with torch.inference_mode(), _stop_on_worker_death(control):
                for batch in loader:
                    control.checkpoint()
                    for local, reason in batch["bad"]:
                        bad.append((todo[local], reason))
                    if batch["images"].numel():
                        inputs = batch["images"].to(device, non_blocking=True)
                        with torch.autocast(device.type, dtype=autocast_dtype, enabled=autocast_dtype is not None):
                            rows = chunked(model.features, inputs).to("cpu", STORE_DTYPE)
                        counts = batch.get("groups") or [1] * len(batch["indices"])
                        for local, feat in zip(batch["indices"].tolist(), torch.split(rows, counts), strict=True):
                            index = todo[local]
                            (pending if keys[index] is not None else held)[index] = feat.clone()
                    if len(pending) >= APPEND_EVERY:
                        _store(bucket, pending, keys, held)
                        pending = {}
                    done += len(batch["indices"]) + len(batch["bad"])
                    if progress:
                        progress(done, total)
        finally:  # cancelled or not, what was computed is kept for the next run
            _store(bucket, pending, keys, held)
    failed = {index for index, _ in bad}
    kept = [index for index in range(total) if index in held or (index not in failed and keys[index] in known)]
    # `known` is the bucket's live index: what this extraction appended is in it too

    def rows(index: int) -> torch.Tensor:
        return held[index] if index in held else bucket.rows(known[keys[index]])

    dim = int(rows(kept[0]).shape[1]) if kept else 0
    counts = [int(rows(index).shape[0]) for index in kept]
    features = mapped.spill((rows(index) for index in kept), dim)
    labels = target_tensor([samples[i].target for i in kept])
    return Embedded(features, counts, labels, kept, bad)


def _store(bucket: Bucket, pending: dict[int, torch.Tensor], keys: list[str | None],
           held: dict[int, torch.Tensor]) -> None:
    if not bucket.append({keys[index]: feat for index, feat in pending.items()}):  # type: ignore[misc]
        held.update(pending)


@contextlib.contextmanager
def _stop_on_worker_death(control: Control):
    """A worker killed while the user stops the run (Ctrl-C reaches the process group) is part of the stop."""
    try:
        yield
    except RuntimeError as exc:
        if control.cancelled and "DataLoader worker" in str(exc):
            raise Cancelled() from exc
        raise
