"""Top-k predictions for new files with a trained run: the run's own pipeline, so preprocessing (image
resize and normalisation, or sound resampling, windows and spectrogram) is the same as in training.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import torch

from tlstudio.core.batching import make_loader
from tlstudio.core.data import AUDIO_SUFFIXES, IMAGE_SUFFIXES, Sample, walk_media
from tlstudio.core.media.audio_dataset import pool_groups
from tlstudio.core.runs import RunDir, load_model


@dataclass(frozen=True)
class Prediction:
    path: str
    top: list[tuple[str, float]]  # (class, probability), best first
    error: str = ""


def expand(paths: Sequence[str | Path], modality: str = "image") -> list[Path]:
    """Files as given, and the media files inside given folders, found as the scan finds them (sorted;
    hidden files and folders left out; symlink loops survived)."""
    suffixes = IMAGE_SUFFIXES if modality == "image" else AUDIO_SUFFIXES
    out: list[Path] = []
    for item in map(Path, paths):
        out.extend(sorted(walk_media(item, suffixes)) if item.is_dir() else [item])
    return out


class Predictor:
    def __init__(self, run: RunDir, device: str = "cpu") -> None:
        self.model, self.classes, self.pipeline = load_model(run)
        self.device = torch.device(device)
        self.model.to(self.device)

    @property
    def modality(self) -> str:
        return self.pipeline.modality

    def _scores(self, inputs: torch.Tensor, groups: list[int] | None, tta: bool) -> torch.Tensor:
        probabilities = pool_groups(self.model(inputs).float().softmax(dim=1), groups)
        if tta:
            if self.modality == "image":  # the mirror image
                flipped = self.model(inputs.flip(-1)).float().softmax(dim=1)
                probabilities = (probabilities + pool_groups(flipped, groups)) / 2
            else:  # the same windows shifted by a quarter window (half a hop)
                shift = max(1, inputs.shape[-1] // 4)
                shifted = self.model(torch.roll(inputs, shifts=shift, dims=-1)).float().softmax(dim=1)
                probabilities = (probabilities + pool_groups(shifted, groups)) / 2
        return probabilities

    @torch.inference_mode()
    def probabilities(self, files: Sequence[str | Path], batch_size: int = 16, tta: bool = False,
                      progress: Callable[[int, int], None] | None = None) -> tuple[torch.Tensor, dict[int, str]]:
        """(len(files), classes) probabilities; rows of unreadable files are NaN, their reasons in the dict."""
        files = [Path(f) for f in files]
        loader = make_loader(self.pipeline.eval_dataset([Sample(str(f), 0) for f in files]), batch_size, 0,
                             self.device)
        out = torch.full((len(files), len(self.classes)), float("nan"))
        errors: dict[int, str] = {}
        done = 0
        for batch in loader:
            for index, reason in batch["bad"]:
                errors[index] = reason
            if batch["indices"].numel():
                scores = self._scores(batch["images"].to(self.device), batch.get("groups"), tta).cpu()
                out[batch["indices"]] = scores
            done += len(batch["indices"]) + len(batch["bad"])
            if progress:
                progress(done, len(files))
        return out, errors

    def predict(self, files: Sequence[str | Path], top_k: int = 3, batch_size: int = 16, tta: bool = False,
                progress: Callable[[int, int], None] | None = None) -> list[Prediction]:
        files = [Path(f) for f in files]
        probabilities, errors = self.probabilities(files, batch_size, tta, progress)
        k = min(top_k, len(self.classes))
        results = []
        for index, path in enumerate(files):
            if index in errors:
                results.append(Prediction(str(path), [], errors[index]))
                continue
            values, indices = probabilities[index].topk(k)
            results.append(Prediction(str(path), [(self.classes[int(i)], float(v))
                                                  for v, i in zip(values, indices, strict=True)]))
        return results
