"""Calibrated confidence: one temperature fitted on validation (Guo et al., 2017), and how far the stated
confidence is from the observed accuracy (expected calibration error, 15 equal-width bins).

Why a temperature and nothing richer: it is one number, so it cannot overfit a few hundred validation files,
it never changes which class wins (it is applied after a clip's windows are pooled), and it travels inside
every export as two operations (log, divide) before a softmax.
"""

from __future__ import annotations

import math
from typing import Any

import torch

from tlstudio.core.data.audio_clips import pool_groups

BINS = 15
MIN_FILES = 20  # below this a fitted temperature is noise
LOWEST, HIGHEST = 0.05, 20.0  # temperatures outside this range mean the fit went wrong, not a real model


def calibrated(probabilities: torch.Tensor, temperature: float) -> torch.Tensor:
    """Probabilities at `temperature`: softmax(log p / T). For one window this is exactly softmax(logits / T);
    applied after a clip's windows are pooled, it cannot change which class wins either. TorchScript-able:
    the exported graphs call this very function."""
    if temperature == 1.0:
        return probabilities
    return (probabilities.clamp_min(1e-12).log() / temperature).softmax(dim=1)


def sharpen(probabilities: torch.Tensor, temperature: float | torch.Tensor = 1.0) -> torch.Tensor:
    """`calibrated`, also for a temperature that is a tensor being fitted (never short-cut at T = 1 then:
    the gradient must flow)."""
    if isinstance(temperature, torch.Tensor):
        return (probabilities.clamp_min(1e-12).log() / temperature).softmax(dim=1)
    return calibrated(probabilities, temperature)


def pooled(logits: torch.Tensor, groups: list[int] | None, temperature: float | torch.Tensor = 1.0) -> torch.Tensor:
    """Per-file probabilities as users are shown them: each window's softmax, averaged over a clip's windows
    (the studio's one pooling rule), then set to `temperature`."""
    return sharpen(pool_groups(logits.float().softmax(dim=1), groups), temperature)


def _bins(probabilities: torch.Tensor, labels: torch.Tensor, bins: int):
    """(low, high, mean confidence, accuracy, files) of each non-empty confidence bin: (low, high], the
    first bin also taking 0. The one binning rule of the error and of the diagram."""
    confidence, predicted = probabilities.max(dim=1)
    correct = (predicted == labels).double()
    for b in range(bins):
        low, high = b / bins, (b + 1) / bins
        inside = (confidence > low) & (confidence <= high) if b else (confidence <= high)
        if inside.any():
            yield (low, high, float(confidence[inside].double().mean()), float(correct[inside].mean()),
                   int(inside.sum()))


def expected_calibration_error(probabilities: torch.Tensor, labels: torch.Tensor, bins: int = BINS) -> float:
    """Sum over confidence bins of |accuracy - mean confidence|, weighted by the bin's share of files."""
    if not len(labels):
        return float("nan")
    return sum(count / len(labels) * abs(accuracy - confidence)
               for _low, _high, confidence, accuracy, count in _bins(probabilities, labels, bins))


def reliability(probabilities: torch.Tensor, labels: torch.Tensor, bins: int = BINS) -> list[dict[str, float]]:
    """Per non-empty bin: its range, mean confidence, accuracy and file count (the reliability diagram)."""
    return [{"low": round(low, 4), "high": round(high, 4), "confidence": round(confidence, 4),
             "accuracy": round(accuracy, 4), "count": count}
            for low, high, confidence, accuracy, count in _bins(probabilities, labels, bins)]


def fit_temperature(logits: torch.Tensor, groups: list[int] | None, labels: torch.Tensor,
                    min_files: int = MIN_FILES) -> float:
    """The temperature that minimises the validation negative log-likelihood (searched over log T, so it
    stays positive). Too few files to fit (< MIN_FILES, or a single class present) leave the model as it is."""
    if len(labels) < min_files or labels.unique().numel() < 2:
        return 1.0
    with torch.inference_mode(False), torch.enable_grad():
        # validation ran in inference mode; autograd needs ordinary copies
        logits, labels = logits.detach().float().clone(), labels.detach().long().clone()
        log_t = torch.zeros(1, requires_grad=True)
        optimizer = torch.optim.LBFGS([log_t], lr=0.1, max_iter=200, line_search_fn="strong_wolfe")

        def closure() -> torch.Tensor:
            optimizer.zero_grad()
            probabilities = pooled(logits, groups, log_t.exp())
            loss = torch.nn.functional.nll_loss(probabilities.clamp_min(1e-12).log(), labels)
            loss.backward()
            return loss

        optimizer.step(closure)
    temperature = float(log_t.detach().exp())
    if not math.isfinite(temperature):
        return 1.0
    return min(max(temperature, LOWEST), HIGHEST)


def _halves(count: int) -> tuple[list[int], list[int]]:
    """Files split alternately into two halves (the validation list is in class order, so both halves see
    every class)."""
    return list(range(0, count, 2)), list(range(1, count, 2))


def _subset(logits: torch.Tensor, groups: list[int] | None, files: list[int]) -> tuple[torch.Tensor, list[int] | None]:
    if not groups:
        return logits[files], None
    starts = [0]
    for size in groups:
        starts.append(starts[-1] + size)
    rows = [torch.arange(starts[f], starts[f + 1]) for f in files]
    return logits[torch.cat(rows)] if rows else logits[:0], [groups[f] for f in files]


def calibrate(logits: torch.Tensor, groups: list[int] | None, labels: torch.Tensor) -> dict[str, Any]:
    """The temperature (fitted on all validation files) and the calibration error before and after.

    `ece_after` is cross-fitted: each half of the validation files is scored with the temperature fitted on
    the other half, so the number is not measured on the files that chose it. A temperature that does not
    lower that held-out error is not applied (`applied` false, temperature 1): with a few dozen files the
    fit can chase noise, and the studio then keeps the model's own confidence."""
    labels = labels.long()
    fitted = fit_temperature(logits, groups, labels)
    before = pooled(logits, groups)
    first, second = _halves(len(labels))
    after = before.clone()
    for fit_on, score_on in ((first, second), (second, first)):
        fit_logits, fit_groups = _subset(logits, groups, fit_on)
        score_logits, score_groups = _subset(logits, groups, score_on)
        if score_on:
            # each half has half the files: judged at half the minimum, so 20 files can be calibrated
            after[score_on] = pooled(score_logits, score_groups, fit_temperature(
                fit_logits, fit_groups, labels[fit_on], min_files=MIN_FILES // 2))
    ece_before = expected_calibration_error(before, labels)
    ece_after = expected_calibration_error(after, labels)
    applied = len(labels) >= MIN_FILES and fitted != 1.0 and ece_after < ece_before
    temperature = fitted if applied else 1.0
    return {
        "temperature": round(temperature, 4),
        "fitted_temperature": round(fitted, 4),
        "applied": applied,
        "ece_before": round(ece_before, 4),
        "ece_after": round(ece_after if applied else ece_before, 4),
        "ece_cross_fitted": round(ece_after, 4),
        "bins": BINS,
        "method": "temperature scaling (NLL on validation); ECE after is cross-fitted on two halves",
        "reliability_before": reliability(before, labels),
        "reliability_after": reliability(pooled(logits, groups, temperature), labels),
        "files": len(labels),
    }


def ece_with(logits: torch.Tensor, groups: list[int] | None, labels: torch.Tensor,
             temperature: float) -> tuple[float, float]:
    """(ECE before, ECE at `temperature`) on another split, such as the held-out test folder."""
    labels = labels.long()
    return (round(expected_calibration_error(pooled(logits, groups), labels), 4),
            round(expected_calibration_error(pooled(logits, groups, temperature), labels), 4))
