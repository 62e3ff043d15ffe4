"""Top-k predictions for new files with a trained run: the same preprocessing as training, by construction."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import torch

from tlstudio.core.data import IMAGE_SUFFIXES
from tlstudio.core.media.image_transforms import eval_transform
from tlstudio.core.media.images import ImageDecodeError, load_rgb
from tlstudio.core.runs import RunDir, load_model


@dataclass(frozen=True)
class Prediction:
    path: str
    top: list[tuple[str, float]]  # (class, probability), best first
    error: str = ""


def expand(paths: Sequence[str | Path]) -> list[Path]:
    """Files as given, and the images inside given folders (sorted, hidden ones left out)."""
    out: list[Path] = []
    for item in map(Path, paths):
        if item.is_dir():
            out.extend(sorted(p for p in item.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES
                              and not any(part.startswith(".") for part in p.relative_to(item).parts)))
        else:
            out.append(item)
    return out


class Predictor:
    def __init__(self, run: RunDir, device: str = "cpu") -> None:
        self.model, self.classes, self.preprocess = load_model(run)
        self.device = torch.device(device)
        self.model.to(self.device)
        self.transform = eval_transform(self.preprocess)

    @torch.inference_mode()
    def predict(self, files: Sequence[str | Path], top_k: int = 3, batch_size: int = 16,
                progress: Callable[[int, int], None] | None = None) -> list[Prediction]:
        results: list[Prediction] = []
        files = [Path(f) for f in files]
        k = min(top_k, len(self.classes))
        for start in range(0, len(files), batch_size):
            chunk = files[start : start + batch_size]
            tensors, ok = [], []
            for path in chunk:
                try:
                    tensors.append(self.transform(load_rgb(path, self.preprocess.resize)))
                    ok.append(path)
                except ImageDecodeError as exc:
                    results.append(Prediction(str(path), [], str(exc)))
            if tensors:
                probabilities = self.model(torch.stack(tensors).to(self.device)).softmax(dim=1).cpu()
                values, indices = probabilities.topk(k, dim=1)
                for path, vals, idxs in zip(ok, values, indices, strict=True):
                    results.append(Prediction(str(path), [(self.classes[int(i)], float(v))
                                                          for v, i in zip(vals, idxs, strict=True)]))
            if progress:
                progress(min(start + batch_size, len(files)), len(files))
        order = {str(path): i for i, path in enumerate(files)}
        return sorted(results, key=lambda r: order[r.path])
