"""Top-k predictions for new files with a trained run: the run's own pipeline, so preprocessing (image
resize and normalisation, or sound resampling, windows and spectrogram) is the same as in training.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import torch

from tlstudio.core.batching import make_loader
from tlstudio.core.data import AUDIO_SUFFIXES, IMAGE_SUFFIXES, Sample
from tlstudio.core.media.audio_dataset import pool_groups
from tlstudio.core.runs import RunDir, load_model


@dataclass(frozen=True)
class Prediction:
    path: str
    top: list[tuple[str, float]]  # (class, probability), best first
    error: str = ""


def expand(paths: Sequence[str | Path], modality: str = "image") -> list[Path]:
    """Files as given, and the media files inside given folders (sorted, hidden ones left out)."""
    suffixes = IMAGE_SUFFIXES if modality == "image" else AUDIO_SUFFIXES
    out: list[Path] = []
    for item in map(Path, paths):
        if item.is_dir():
            out.extend(sorted(p for p in item.rglob("*") if p.suffix.lower() in suffixes
                              and not any(part.startswith(".") for part in p.relative_to(item).parts)))
        else:
            out.append(item)
    return out


class Predictor:
    def __init__(self, run: RunDir, device: str = "cpu") -> None:
        self.model, self.classes, self.pipeline = load_model(run)
        self.device = torch.device(device)
        self.model.to(self.device)

    @property
    def modality(self) -> str:
        return self.pipeline.modality

    @torch.inference_mode()
    def predict(self, files: Sequence[str | Path], top_k: int = 3, batch_size: int = 16,
                progress: Callable[[int, int], None] | None = None) -> list[Prediction]:
        files = [Path(f) for f in files]
        k = min(top_k, len(self.classes))
        loader = make_loader(self.pipeline.eval_dataset([Sample(str(f), 0) for f in files]), batch_size, 0,
                             self.device)
        results: dict[int, Prediction] = {}
        done = 0
        for batch in loader:
            for index, reason in batch["bad"]:
                results[index] = Prediction(str(files[index]), [], reason)
            if batch["indices"].numel():
                logits = pool_groups(self.model(batch["images"].to(self.device)).float(), batch.get("groups"))
                values, indices = logits.softmax(dim=1).cpu().topk(k, dim=1)
                for index, vals, idxs in zip(batch["indices"].tolist(), values, indices, strict=True):
                    results[index] = Prediction(str(files[index]), [(self.classes[int(i)], float(v))
                                                                     for v, i in zip(vals, idxs, strict=True)])
            done += len(batch["indices"]) + len(batch["bad"])
            if progress:
                progress(done, len(files))
        return [results[i] for i in range(len(files))]
