"""Metrics from predictions: accuracy, per-class precision/recall/F1, confusion matrix, worst mistakes."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch


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
    result: dict[str, Any] = {
        "accuracy": round(float((predictions == labels).double().mean()) if len(labels) else 0.0, 4),
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
