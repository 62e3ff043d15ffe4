"""Metrics from predictions: accuracy, per-class precision/recall/F1, confusion matrix, worst mistakes."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import torch


def wilson_interval(correct: int, total: int, z: float = 1.96) -> tuple[float, float]:
    """The Wilson score interval (95% by default) for an accuracy of `correct` out of `total`.

    Honest for small validation sets and for accuracies near 0 or 1, where the normal approximation
    gives intervals outside [0, 1] or of width zero. No files: the whole range [0, 1].
    """
    if total <= 0:
        return 0.0, 1.0
    p = correct / total
    denominator = 1 + z * z / total
    centre = (p + z * z / (2 * total)) / denominator
    half = z * math.sqrt(p * (1 - p) / total + z * z / (4 * total * total)) / denominator
    return max(0.0, centre - half), min(1.0, centre + half)


def confusion_matrix(labels: torch.Tensor, predictions: torch.Tensor, num_classes: int) -> torch.Tensor:
    """Rows are true classes, columns predicted classes."""
    flat = labels.long() * num_classes + predictions.long()
    return torch.bincount(flat, minlength=num_classes * num_classes).reshape(num_classes, num_classes)


def report(
    probabilities: torch.Tensor,
    labels: torch.Tensor,
    classes: Sequence[str],
    paths: Sequence[str] | None = None,
    worst: int = 50,
) -> dict[str, Any]:
    num_classes = len(classes)
    predictions = probabilities.argmax(dim=1)
    matrix = confusion_matrix(labels, predictions, num_classes)
    true_positive = matrix.diag().double()
    predicted = matrix.sum(dim=0).double()
    actual = matrix.sum(dim=1).double()
    precision = torch.where(predicted > 0, true_positive / predicted.clamp(min=1), torch.zeros_like(predicted))
    recall = torch.where(actual > 0, true_positive / actual.clamp(min=1), torch.zeros_like(actual))
    denom = precision + recall
    f1 = torch.where(denom > 0, 2 * precision * recall / denom.clamp(min=1e-12), torch.zeros_like(denom))
    per_class = {
        name: {
            "precision": round(float(precision[i]), 4),
            "recall": round(float(recall[i]), 4),
            "f1": round(float(f1[i]), 4),
            "support": int(actual[i]),
        }
        for i, name in enumerate(classes)
    }
    present = actual > 0
    correct = int((predictions == labels).sum()) if len(labels) else 0
    low, high = wilson_interval(correct, len(labels))
    result: dict[str, Any] = {
        "accuracy": round(float((predictions == labels).double().mean()) if len(labels) else 0.0, 4),
        "accuracy_interval": {"low": round(low, 4), "high": round(high, 4), "level": 0.95, "method": "wilson"},
        "macro_f1": round(float(f1[present].mean()) if present.any() else 0.0, 4),
        "per_class": per_class,
        "confusion_matrix": matrix.tolist(),
    }
    if paths is not None:
        wrong = (predictions != labels).nonzero().flatten().tolist()
        confidence = probabilities.max(dim=1).values
        wrong.sort(key=lambda i: -float(confidence[i]))
        result["misclassified"] = [
            {
                "path": paths[i],
                "true": classes[int(labels[i])],
                "predicted": classes[int(predictions[i])],
                "confidence": round(float(confidence[i]), 4),
            }
            for i in wrong[:worst]
        ]
    return result
