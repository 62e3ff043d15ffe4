"""What the Data page shows of a scanned folder, worked out once and off the GUI thread (no Qt here).

With 100,000 files every pass over the samples costs tens of milliseconds in Python; done in the slot
that renders the page, five of them froze the window for a quarter of a second. The scan task computes
the digest right after the scan, and the page only copies it into its widgets.
"""

from __future__ import annotations

import itertools
import os
import re
from collections import Counter
from dataclasses import dataclass, field

from tlstudio.core.data.spec import DatasetSpec
from tlstudio.gui.advice import data_advice


@dataclass
class FolderDigest:
    spec: DatasetSpec
    rows: list[str]  # the table's rows: classes, or a regression's value ranges
    train: dict[str, int]
    val: dict[str, int]
    paths: dict[str, list[str]]  # a row's files (train and validation), sorted
    every_path: frozenset[str]
    advice: list[str]
    notes: list[str]  # advice and the scan's warnings: few, and each worth reading whole
    problems: list[str]  # one line per unreadable file: any number of them
    bins: list[tuple[str, float, float]] = field(default_factory=list)


def digest(spec: DatasetSpec) -> FolderDigest:
    bins = value_bins(spec) if spec.regression else []
    shown = list(itertools.chain(spec.train, spec.val))
    if spec.regression:  # the table's rows are ranges of the value instead of classes
        rows = [name for name, _, _ in bins]
        train = {name: sum(in_bin(s.value, low, high) for s in spec.train) for name, low, high in bins}
        val = {name: sum(in_bin(s.value, low, high) for s in spec.val) for name, low, high in bins}
        paths = {name: sorted(s.path for s in shown if in_bin(s.value, low, high)) for name, low, high in bins}
    else:
        rows = list(spec.classes)
        counted_train, counted_val = spec.counts("train"), spec.counts("val")
        train = {name: counted_train.get(name, 0) for name in rows}
        val = {name: counted_val.get(name, 0) for name in rows}
        by_label: dict[int, list[str]] = {}
        for sample in shown:
            by_label.setdefault(sample.label, []).append(sample.path)
        paths = {name: sorted(by_label.get(label, ())) for label, name in enumerate(rows)}
    advice = data_advice(spec)
    notes = [f"⚠ {text}" for text in advice] + [f"• {warning}" for warning in spec.warnings]
    problems = problem_summary([skipped.reason for skipped in spec.skipped])
    problems += [f"✗ {relative(skipped.path, spec.root)}: {skipped.reason}" for skipped in spec.skipped]
    every_path = frozenset(s.path for s in itertools.chain(shown, spec.test))
    return FolderDigest(spec, rows, train, val, paths, every_path, advice, notes, problems, bins)


def problem_summary(reasons: list[str], shown: int = 3) -> list[str]:
    """One line that counts the unusable files by reason, most common first ("120 files: AAC audio (M4A)
    inside a .mp3 name"), so nobody scrolls 120 lines to learn there is one cause."""
    if not reasons:
        return []
    counts = Counter(reason_kind(reason) for reason in reasons)
    parts = [f"{n} file{'s' if n > 1 else ''}: {kind}" for kind, n in counts.most_common(shown)]
    rest = sum(n for _kind, n in counts.most_common()[shown:])
    more = f"; {rest} more for other reasons" if rest else ""
    return [f"{len(reasons)} file{'s' if len(reasons) > 1 else ''} cannot be used. " + "; ".join(parts) + more]


def reason_kind(reason: str) -> str:
    """A reason without the one file's details: "image too large (9000x9000 pixels)" -> "image too large";
    details that name a kind of content are kept ("AAC audio (M4A) inside a .mp3 name: ...")."""
    head = reason.split(": a format", 1)[0]
    return re.sub(r"\s*\((?![^)]*(?:M4A|M4B|ADTS))[^)]*\)\s*$", "", head).strip() or reason


def relative(path: str, root: str) -> str:
    """A file as its class folder and name (problems name their class folder). String work, not pathlib:
    for thousands of lines pathlib's parsing was most of the page's render time (130 ms per 2,000)."""
    prefix = root.rstrip("/\\") + os.sep
    return path[len(prefix):] if path.startswith(prefix) else os.path.basename(path)


def value_bins(spec: DatasetSpec) -> list[tuple[str, float, float]]:
    """(name, low, high) ranges of a regression's values for the table: each value when there are at most 12
    distinct ones (digits, ratings), else 10 equal-width ranges."""
    values = sorted({s.value for s in spec.train + spec.val if s.value is not None})
    if not values:
        return []
    if len(values) <= 12:
        return [(f"{v:.4g}", v, v) for v in values]
    low, high = values[0], values[-1]
    step = (high - low) / 10
    edges = [low + step * k for k in range(11)]
    return [(f"{edges[k]:.4g} – {edges[k + 1]:.4g}", edges[k] if k else float("-inf"),
             edges[k + 1] if k < 9 else float("inf")) for k in range(10)]


def in_bin(value: float | None, low: float, high: float) -> bool:
    """A single value's row holds it; a range holds [low, high)."""
    return value is not None and (value == low if low == high else low <= value < high)


