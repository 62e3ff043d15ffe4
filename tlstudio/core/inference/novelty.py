""""Unlike anything it was trained on": distance to the nearest training files in the backbone's feature
space (deep k-nearest neighbours, Sun et al., 2022).

Why not the confidence alone: a softmax has to share 100% among the known classes, so a drawing of a circle
shown to an ants/bees model is still "93% bee". Its features, though, lie far from every training photo.
The threshold is set on validation files (which the bank does not contain), so about `QUANTILE` of real
inputs like the training data pass, whatever the backbone's distance scale.
"""

from __future__ import annotations

import math
from typing import Any

import torch

BANK_FILES = 2000  # training files kept as the reference: bounds model.pt's size and the search time
# when the features must be read again from the files (fine-tuned runs): one more pass, so fewer
FILE_BANK_FILES = 500
K = 5
QUANTILE = 0.95
MIN_VALIDATION = 10


def normalised(features: torch.Tensor) -> torch.Tensor:
    return torch.nn.functional.normalize(features.float().flatten(1), dim=1)


def evenly(count: int, limit: int) -> torch.Tensor:
    """Up to `limit` indices spread evenly over `count` items (the lists are in class order)."""
    if count <= limit:
        return torch.arange(count)
    return torch.linspace(0, count - 1, limit).round().long().unique()


def distances(bank: torch.Tensor, features: torch.Tensor, k: int) -> torch.Tensor:
    """Cosine distance from each row of `features` to its k-th nearest row of `bank` (both normalised)."""
    if not len(features):
        return torch.empty(0)
    k = max(1, min(k, len(bank)))
    out = []
    for part in torch.split(normalised(features), 1024):
        similarity = part @ bank.to(part.device, torch.float32).T
        out.append((1 - similarity.topk(k, dim=1).values[:, -1]).clamp(0, 2))
    return torch.cat(out)


def build(train_features: torch.Tensor, val_features: torch.Tensor) -> dict[str, Any] | None:
    """What model.pt keeps: the bank (float16) and the distance beyond which an input is unfamiliar.
    None when there are too few validation files to set the threshold."""
    if len(val_features) < MIN_VALIDATION or len(train_features) < K:
        return None
    bank = normalised(train_features[evenly(len(train_features), BANK_FILES)])
    val = distances(bank, val_features, K)
    threshold = float(torch.quantile(val, QUANTILE))
    # every file at one point (an untrained network), or an overflow: nothing to compare with
    if not math.isfinite(threshold) or threshold < 1e-4:
        return None
    return {"bank": bank.half().contiguous(), "threshold": threshold, "k": K, "quantile": QUANTILE,
            "validation_median": float(val.median())}


class NoveltyCheck:
    def __init__(self, novelty: dict[str, Any]) -> None:
        self.bank = novelty["bank"].float()
        self.threshold = float(novelty["threshold"])
        self.k = int(novelty["k"])

    def scores(self, features: torch.Tensor) -> torch.Tensor:
        """Distance of each input to the training files, divided by the threshold: above 1 is unfamiliar."""
        return distances(self.bank, features, self.k) / max(self.threshold, 1e-6)
