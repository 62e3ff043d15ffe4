"""Advice about a data set, in a sentence each: what an expert would point out before training.

Pure functions of the scan's DatasetSpec (no Qt), so the Data page and the tests read the same words.
"""

from __future__ import annotations

import math

from tlstudio.core.data.spec import DatasetSpec

TINY_CLASS = 10  # files: fewer and a class is hard to learn and to judge
SMALL_VALIDATION = 30  # files: fewer and the accuracy's 95% interval is wider than about +/-15 points
IMBALANCE = 3.0  # largest class / smallest class


def wilson_interval(correct: int, total: int, z: float = 1.96) -> tuple[float, float]:
    """The same Wilson 95% interval as `core.inference.metrics.wilson_interval`, without importing torch
    on the GUI thread (the window must open before torch loads)."""
    if total <= 0:
        return 0.0, 1.0
    p = correct / total
    denominator = 1 + z * z / total
    centre = (p + z * z / (2 * total)) / denominator
    half = z * math.sqrt(p * (1 - p) / total + z * z / (4 * total * total)) / denominator
    return max(0.0, centre - half), min(1.0, centre + half)


def some_of(names: list[str], shown: int = 5) -> str:
    """A list in a sentence that stays a sentence: the first few, and how many more (50 class names made the
    Data page's advice 336 px tall)."""
    if len(names) <= shown + 1:
        return ", ".join(names)
    return f"{', '.join(names[:shown])} and {len(names) - shown} more"


def data_advice(spec: DatasetSpec) -> list[str]:
    advice = []
    train, val = spec.counts("train"), spec.counts("val")
    totals = {name: train[name] + val[name] for name in spec.classes}
    tiny = [f"{name} ({count})" for name, count in totals.items() if count < TINY_CLASS]
    if tiny:
        advice.append(f"Tiny class(es): {some_of(tiny)} file(s). Aim for at least {TINY_CLASS} files a class, "
                      "ideally 30 or more; with fewer the model guesses and the score says little.")
    if spec.val and len(spec.val) < SMALL_VALIDATION:
        n = len(spec.val)
        low, high = wilson_interval(round(0.9 * n), n)
        advice.append(f"Only {n} validation file(s): a score of 90% on them could really be anything from "
                      f"{low:.0%} to {high:.0%} (95% interval). More files, or a larger validation share, make it "
                      "trustworthy.")
    counts = [c for c in totals.values() if c > 0]
    if len(counts) >= 2 and max(counts) >= IMBALANCE * min(counts):
        big = max(totals, key=totals.get)
        small = min((n for n in totals if totals[n] > 0), key=totals.get)
        advice.append(f"Imbalanced classes: {big} has {totals[big]} files, {small} only {totals[small]}. The model "
                      f"will lean towards {big}; watch {small}'s recall on the Evaluate page, or add files.")
    empty_val = [name for name in spec.classes if train[name] and not val[name]]
    if spec.val and empty_val:
        advice.append(f"No validation files for: {some_of(empty_val)}; their accuracy cannot be measured.")
    return advice


def grouping_line(spec: DatasetSpec) -> str:
    """How the split was made, in words: the rule, and how many groups each side holds."""
    grouping = spec.grouping or {}
    groups = grouping.get("groups", {})
    source = {"folders": "your train/ and val/ folders", "drawn": "drawn by the studio",
              "drawn from train/": "validation drawn from train/"}.get(spec.split_source, spec.split_source)
    text = f"Split: {source}"
    rule = grouping.get("rule")
    if rule and spec.split_source != "folders":
        text += f"; kept together: {rule}"
    if groups:
        text += f"; {groups.get('train', 0)} group(s) to train, {groups.get('val', 0)} to validate"
    if grouping.get("copies_merged"):
        copies = grouping["copies_merged"]
        text += (f"; {copies} {'copy' if copies == 1 else 'copies'} of another file (the same picture) kept on its "
                 "original's side")
    if spec.test:
        text += f"; test/ holds {len(spec.test)} file(s), kept apart for a final score"
    return text + "."
