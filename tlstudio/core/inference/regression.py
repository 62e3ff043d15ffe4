"""Metrics of a regression run: MAE, RMSE, R², the largest errors, and what guessing would score.

R² and the "always guess the training mean" MAE put the error in proportion: an MAE of 0.4 means little
until one knows that guessing scores 2.5.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch


def regression_report(values: torch.Tensor, targets: torch.Tensor, paths: Sequence[str] | None = None,
                      train_mean: float | None = None, worst: int = 50) -> dict[str, Any]:
    """`values`: each file's predicted value, (N,) or (N, 1); `targets` the true values."""
    predicted = values.reshape(-1).double()
    truth = targets.reshape(-1).double()
    if not len(truth):
        return {"mae": None, "rmse": None, "r2": None, "files": 0, "largest_errors": []}
    error = predicted - truth
    spread = float(((truth - truth.mean()) ** 2).sum())
    result: dict[str, Any] = {
        "mae": round(float(error.abs().mean()), 6),
        "rmse": round(float(error.pow(2).mean().sqrt()), 6),
        "r2": round(1.0 - float(error.pow(2).sum()) / spread, 6) if spread > 0 else None,
        "median_absolute_error": round(float(error.abs().median()), 6),
        "files": len(truth),
    }
    if train_mean is not None:
        result["mae_guessing_the_mean"] = round(float((truth - train_mean).abs().mean()), 6)
    if paths is not None:
        order = error.abs().argsort(descending=True).tolist()[:worst]
        result["largest_errors"] = [
            {"path": paths[i], "true": round(float(truth[i]), 6), "predicted": round(float(predicted[i]), 6),
             "error": round(float(error[i]), 6)}
            for i in order
        ]
    return result
