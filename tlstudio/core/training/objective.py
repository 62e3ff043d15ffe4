"""What a run optimises and how an epoch is scored: classification (accuracy) or regression (MAE).

The training loop, validation, the best-epoch choice and lr-find ask the objective, so one loop serves both
tasks. Regression trains with the Huber loss on standardised targets: squared error for small misses (as
MSE), linear beyond one standard deviation, so a few mistyped values in labels.csv cannot dominate the
gradient the way they do under MSE.
"""

from __future__ import annotations

import torch
from torch import nn

from tlstudio.core.data.audio_clips import clip_probabilities, pool_groups


class Classification:
    task = "classification"
    score_name = "acc"  # history.csv column suffix, EpochEnd's score
    higher_is_better = True

    def __init__(self, label_smoothing: float = 0.0) -> None:
        self.loss_fn: nn.Module = nn.CrossEntropyLoss(label_smoothing=label_smoothing)

    def pool(self, outputs: torch.Tensor, groups: list[int] | None) -> torch.Tensor:
        return clip_probabilities(outputs, groups)

    def hits(self, outputs: torch.Tensor, labels: torch.Tensor) -> float:
        """The batch's summed score: files right."""
        return float((outputs.argmax(dim=1) == labels).sum())

    def loss(self, pooled: torch.Tensor, labels: torch.Tensor) -> float:
        """Plain cross-entropy of each file's (pooled) probabilities: the curve's and metrics.json's loss."""
        if not len(labels):
            return float("nan")
        return float(nn.functional.nll_loss(pooled.clamp_min(1e-12).log(), labels))

    def score(self, pooled: torch.Tensor, labels: torch.Tensor) -> float:
        return float((pooled.argmax(dim=1) == labels).double().mean()) if len(labels) else 0.0


class StandardisedHuber(nn.Module):
    def __init__(self, mean: float, std: float) -> None:
        super().__init__()
        self.mean = mean
        self.std = std

    def forward(self, outputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        predicted = (outputs.reshape(-1).float() - self.mean) / self.std
        return nn.functional.huber_loss(predicted, (targets.float() - self.mean) / self.std, delta=1.0)


class Regression:
    task = "regression"
    score_name = "mae"
    higher_is_better = False

    def __init__(self, mean: float, std: float) -> None:
        self.loss_fn: nn.Module = StandardisedHuber(mean, std)

    def pool(self, outputs: torch.Tensor, groups: list[int] | None) -> torch.Tensor:
        """A long clip's value: the mean of its windows' values."""
        return pool_groups(outputs.float(), groups)

    def hits(self, outputs: torch.Tensor, labels: torch.Tensor) -> float:
        """The batch's summed absolute error, in the target's unit."""
        return float((outputs.reshape(-1).float() - labels.float()).abs().sum())

    def loss(self, pooled: torch.Tensor, labels: torch.Tensor) -> float:
        if not len(labels):
            return float("nan")
        return float(self.loss_fn(pooled, labels))

    def score(self, pooled: torch.Tensor, labels: torch.Tensor) -> float:
        return float((pooled.reshape(-1) - labels.float()).abs().mean()) if len(labels) else float("nan")


Objective = Classification | Regression


def objective_for(task: str, target: dict | None, label_smoothing: float = 0.0) -> Objective:
    if task == "regression":
        assert target, "a regression run needs its target's mean and std"
        return Regression(float(target["mean"]), float(target["std"]))
    return Classification(label_smoothing)


def improves(objective: Objective, score: float, loss: float, best: dict) -> bool:
    """Is this epoch the best so far: a better score, or the same score at a lower loss."""
    previous = best.get(objective.score_name)
    if previous is None or (objective.higher_is_better and previous < 0):
        return True
    better = score > previous if objective.higher_is_better else score < previous
    return better or (score == previous and loss < best["loss"])
