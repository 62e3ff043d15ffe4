"""The frozen backbone's pass over a split: one embedding per window of each file, cached as it goes."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch

from tlstudio.core.control import Cancelled, Control
from tlstudio.core.data.spec import Sample, target_tensor
from tlstudio.core.models.transfer_model import TransferModel, chunked
from tlstudio.core.training.feature_cache import STORE_DTYPE, Bucket, file_key

APPEND_EVERY = 256  # files per cache shard while extracting


@dataclass
class Embedded:
    """A split's embeddings: `features` holds every window's row; `counts[i]` rows belong to file kept[i]."""

    features: torch.Tensor  # (windows, dim) float32 holding float16-rounded values
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
    known = bucket.load()
    keys = [file_key(sample.path) for sample in samples]
    found: dict[int, torch.Tensor] = {
        index: known[key] for index, key in enumerate(keys) if key is not None and key in known
    }
    todo = [index for index in range(len(samples)) if index not in found]
    bad: list[tuple[int, str]] = []
    total = len(samples)
    if progress:
        progress(len(found), total)
    if todo:
        model.eval()
        loader = loader_factory([samples[index] for index in todo])
        done = len(found)
        pending: dict[str, torch.Tensor] = {}
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
                            found[index] = feat
                            if keys[index] is not None:
                                pending[keys[index]] = feat
                    if len(pending) >= APPEND_EVERY:
                        bucket.append(pending)
                        pending = {}
                    done += len(batch["indices"]) + len(batch["bad"])
                    if progress:
                        progress(done, total)
        finally:  # cancelled or not, what was computed is kept for the next run
            bucket.append(pending)
    kept = sorted(found)
    rows = [found[i] for i in kept]
    features = torch.cat(rows).float() if rows else torch.empty(0, 0)
    labels = target_tensor([samples[i].target for i in kept])
    return Embedded(features, [int(r.shape[0]) for r in rows], labels, kept, bad)


@contextlib.contextmanager
def _stop_on_worker_death(control: Control):
    """A worker killed while the user stops the run (Ctrl-C reaches the process group) is part of the stop."""
    try:
        yield
    except RuntimeError as exc:
        if control.cancelled and "DataLoader worker" in str(exc):
            raise Cancelled() from exc
        raise
