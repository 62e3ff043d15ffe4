"""A map of a run's files: their embeddings projected to 2-D (PCA to 50 dimensions, then t-SNE from
scikit-learn), with what a person looks for marked: mistakes, outliers, and files whose nearest
neighbours are all of another class (the usual sign of a wrong label).

The features are the run's own (its backbone as trained); for a frozen backbone they come from the feature
cache the run filled, so a map of a feature-extraction run costs no pass over the files.
"""

from __future__ import annotations

import csv
import json
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from tlstudio.core.control import Control
from tlstudio.core.data.audio_clips import clip_probabilities, pool_groups
from tlstudio.core.data.loaders import make_loader
from tlstudio.core.data.spec import read_spec
from tlstudio.core.errors import DataError
from tlstudio.core.inference.novelty import evenly
from tlstudio.core.models.saved import load_model
from tlstudio.core.store.paths import features_cache_dir
from tlstudio.core.store.runs import RunDir
from tlstudio.core.training import feature_cache
from tlstudio.core.training.embedding import embed

MAX_FILES = 3000  # t-SNE is quadratic-ish: 3,000 points take about 20 s on two cores
NEIGHBOURS = 10


@dataclass
class MapPoint:
    path: str
    split: str  # "train" or "val"
    true: str  # the class (or, for a regression, the value as text)
    predicted: str
    x: float
    y: float
    mistake: bool
    outlier: bool  # far from every other file (the top 2% of neighbour distances)
    suspect: bool  # its neighbours are mostly of one other class, which the model also predicts
    neighbours_say: str  # the class most of its neighbours have


def build_map(run: RunDir, max_files: int = MAX_FILES, progress: Callable[[str, int, int], None] | None = None,
              control: Control | None = None, seed: int = 0) -> dict[str, Any]:
    """{"points": [MapPoint as dict], "classes", "task", "suspects": how many}."""
    control = control or Control()
    model, classes, pipeline = load_model(run)
    spec = read_spec(run)
    config = run.read_json("config.json")
    samples = [("val", s) for s in spec.val] + [("train", s) for s in spec.train]
    if len(samples) < 5:
        raise DataError("A map needs at least 5 files.", "Train on a larger folder.")
    chosen = [samples[i] for i in evenly(len(samples), max_files).tolist()]
    bucket = _bucket(pipeline, config)
    device = torch.device("cpu")
    try:
        embedded = embed(model, [s for _, s in chosen],
                         lambda subset: make_loader(pipeline.eval_dataset(subset), 32, 0, device), device, bucket,
                         control, progress=lambda done, total: progress and progress("reading files", done, total))
    finally:
        bucket.close()
    if len(embedded.kept) < 5:
        raise DataError("Fewer than 5 of the run's files could be read for the map.",
                        f"Put the data folder back at {spec.root}.")
    rows = embedded.features.float()  # a map's few thousand files: in memory is fine
    features = pool_groups(rows, embedded.counts)
    kept = [chosen[i] for i in embedded.kept]
    regression = bool(model.regression)
    with torch.inference_mode():  # per window, then pooled as everywhere else (probabilities, or values)
        windows = model.head(rows)
        outputs = (pool_groups(windows.float(), embedded.counts) if regression
                   else clip_probabilities(windows, embedded.counts))
    if progress:
        progress("drawing the map (t-SNE)", 0, 1)
    xy, reduced = project(features, seed)
    if progress:
        progress("drawing the map (t-SNE)", 1, 1)
    points = _mark(kept, outputs, reduced, xy, classes, regression)
    return {"points": [asdict(p) for p in points], "classes": classes,
            "task": "regression" if regression else "classification",
            "suspects": sum(p.suspect for p in points), "files": len(points)}


def _bucket(pipeline, config: dict) -> feature_cache.Bucket:
    """The run's feature cache when its backbone stayed frozen (the features are the pretrained ones)."""
    resolved = config.get("resolved") or {}
    description = pipeline.describe()
    if str(resolved.get("unfreeze_blocks")) != "0" or not resolved.get("weights"):
        return feature_cache.Bucket(None, {})
    name, info = feature_cache.bucket_key(config.get("backbone", ""), resolved["weights"], description, "cpu/None")
    return feature_cache.Bucket(features_cache_dir() / name, info, merge=False)  # a training run may be reading


def project(features: torch.Tensor, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """(2-D positions, the PCA-reduced features the neighbours are found in)."""
    from sklearn.decomposition import PCA
    from sklearn.manifold import TSNE

    data = torch.nn.functional.normalize(features.float(), dim=1).numpy()
    n = data.shape[0]
    distinct = len(np.unique(data.round(6), axis=0))
    if distinct < min(5, n):  # scikit-learn's Barnes-Hut t-SNE crashed the process (SIGSEGV) on identical rows
        raise DataError(f"This model sees the files nearly all the same way ({distinct} distinct embedding(s) "
                        f"among {n} files), so there is nothing to map.",
                        "A model trained from random weights, or one that has not learnt yet, gives such features; "
                        "map a run that started from pretrained weights.")
    dims = min(50, n - 1, data.shape[1])
    reduced = PCA(n_components=dims, random_state=seed).fit_transform(data)
    if n < 10:
        return torch.from_numpy(reduced[:, :2]).float(), torch.from_numpy(reduced).float()
    perplexity = float(min(30.0, (n - 1) / 3))
    xy = TSNE(n_components=2, perplexity=perplexity, init="pca", random_state=seed).fit_transform(reduced)
    return torch.from_numpy(xy).float(), torch.from_numpy(reduced).float()


def _mark(kept, outputs: torch.Tensor, reduced: torch.Tensor, xy: torch.Tensor, classes: list[str],
          regression: bool) -> list[MapPoint]:
    k = min(NEIGHBOURS, len(kept) - 1)
    distances = torch.cdist(reduced, reduced)
    distances.fill_diagonal_(float("inf"))
    near_d, near_i = distances.topk(k, largest=False)
    spread = near_d.mean(dim=1)
    outlier_from = float(torch.quantile(spread, 0.98))
    if regression:
        values = outputs.reshape(-1)
        truth = torch.tensor([s.value for _, s in kept])
        error = (values - truth).abs()
        worst_from = float(torch.quantile(error, 0.95))
    points = []
    for i, (split, sample) in enumerate(kept):
        if regression:
            true, predicted = f"{sample.value:.4g}", f"{float(values[i]):.4g}"
            mistake, suspect, majority = bool(error[i] >= worst_from and error[i] > 0), False, ""
        else:
            true, predicted = classes[sample.label], classes[int(outputs[i].argmax())]
            votes = Counter(kept[int(j)][1].label for j in near_i[i])
            label, count = votes.most_common(1)[0]
            majority = classes[label]
            mistake = predicted != true
            suspect = label != sample.label and count >= 0.7 * k and predicted == majority
        points.append(MapPoint(sample.path, split, true, predicted, float(xy[i, 0]), float(xy[i, 1]), mistake,
                               bool(spread[i] >= outlier_from), suspect, majority))
    return points


def write_csv(result: dict[str, Any], path: str | Path) -> None:
    columns = list(MapPoint.__dataclass_fields__)
    with open(path, "w", newline="", encoding="utf-8", errors="surrogateescape") as handle:
        writer = csv.DictWriter(handle, fieldnames=columns)
        writer.writeheader()
        writer.writerows(result["points"])


def save(run: RunDir, result: dict[str, Any]) -> None:
    """map.json in the run folder, so the window shows it again without recomputing."""
    run.write_text("map.json", json.dumps(result))
