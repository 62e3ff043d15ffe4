"""Top-k predictions for new files with a trained run: the run's own pipeline, so preprocessing (image
resize and normalisation, or sound resampling, windows and spectrogram) is the same as in training.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import torch

from tlstudio.core.data.audio_clips import clip_probabilities, pool_groups
from tlstudio.core.data.loaders import make_loader
from tlstudio.core.data.scan import AUDIO_SUFFIXES, IMAGE_SUFFIXES, walk_media
from tlstudio.core.data.spec import Sample
from tlstudio.core.inference.calibration import sharpen
from tlstudio.core.inference.novelty import NoveltyCheck
from tlstudio.core.models.saved import load_model
from tlstudio.core.models.transfer_model import chunked
from tlstudio.core.store.runs import RunDir

UNKNOWN = "unknown"
STREAM_FILES = 1024  # files per pass of predict_stream


@dataclass(frozen=True)
class Prediction:
    path: str
    top: list[tuple[str, float]]  # (class, probability), best first
    error: str = ""
    # distance to the nearest training files over the distance 95% of validation files stay within: above
    # 1 the input is unlike the training data (None: the model has no familiarity data)
    novelty: float | None = None
    value: float | None = None  # a regression model's prediction, in the target's unit (then `top` is empty)

    @property
    def unfamiliar(self) -> bool:
        return self.novelty is not None and self.novelty > 1.0

    def verdict(self, min_confidence: float = 0.0, reject_unfamiliar: bool = True) -> str:
        """The best class, or "unknown" when the (calibrated) confidence is below `min_confidence` or the
        input is unlike the training files. A softmax must share 100% among the known classes, so only the
        second test catches a picture of something else entirely."""
        if self.error:
            return ""
        if self.value is not None:  # a regression has no confidence: only the familiarity test applies
            return UNKNOWN if reject_unfamiliar and self.unfamiliar else f"{self.value:.4g}"
        if not self.top:
            return ""
        label, probability = self.top[0]
        if probability < min_confidence or (reject_unfamiliar and self.unfamiliar):
            return UNKNOWN
        return label


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
        self.familiarity = NoveltyCheck(self.model.novelty) if self.model.novelty else None
        self.novelty = torch.empty(0)  # per file of the last scores() call; NaN where unknown

    @property
    def regression(self) -> bool:
        """A regression model: one value per file (its name is `classes[0]`), no probabilities."""
        return self.model.regression

    @property
    def modality(self) -> str:
        return self.pipeline.modality

    def _scores(self, inputs: torch.Tensor, groups: list[int] | None,
                tta: bool) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor | None]:
        """(plain probabilities, their average with a mirrored / time-shifted copy when `tta`, each file's
        novelty or None). Features and head are run apart (exactly the model's forward) so the features can
        be compared with the training files'."""
        features = chunked(self.model.features, inputs)
        temperature = self.model.temperature
        pool = self._pool
        plain = pool(self.model.head(features), groups, temperature)
        novelty = (self.familiarity.scores(pool_groups(features.float(), groups))
                   if self.familiarity is not None else None)
        if not tta:
            return plain, None, novelty
        # images: the mirror image; sound: each window heard a quarter window later (silence enters at the
        # start, nothing wraps around)
        other = inputs.flip(-1) if self.modality == "image" else delayed(inputs, max(1, inputs.shape[-1] // 4))
        averaged = (plain + pool(chunked(self.model, other), groups, temperature)) / 2
        return plain, averaged, novelty

    def _pool(self, outputs: torch.Tensor, groups: list[int] | None, temperature: float) -> torch.Tensor:
        """Per file: calibrated class probabilities, or a regression's value (the mean over a clip's windows)."""
        if self.model.regression:
            return pool_groups(outputs.float(), groups)
        return sharpen(clip_probabilities(outputs, groups), temperature)

    @torch.inference_mode()
    def scores(self, files: Sequence[str | Path], batch_size: int = 16, tta: bool = False,
               progress: Callable[[int, int], None] | None = None,
               ) -> tuple[torch.Tensor, torch.Tensor | None, dict[int, str]]:
        """One decoding pass: (plain, TTA or None) probabilities of shape (len(files), classes), and the
        reasons for unreadable files (their rows are NaN)."""
        files = [Path(f) for f in files]
        loader = make_loader(self.pipeline.eval_dataset([Sample(str(f), 0) for f in files]), batch_size, 0,
                             self.device)
        plain = torch.full((len(files), len(self.classes)), float("nan"))
        augmented = plain.clone() if tta else None
        self.novelty = torch.full((len(files),), float("nan"))
        errors: dict[int, str] = {}
        done = 0
        for batch in loader:
            for index, reason in batch["bad"]:
                errors[index] = reason
            if batch["indices"].numel():
                base, averaged, novelty = self._scores(batch["images"].to(self.device), batch.get("groups"), tta)
                plain[batch["indices"]] = base.cpu()
                if novelty is not None:
                    self.novelty[batch["indices"]] = novelty.cpu()
                if augmented is not None:
                    augmented[batch["indices"]] = averaged.cpu()
            done += len(batch["indices"]) + len(batch["bad"])
            if progress:
                progress(done, len(files))
        return plain, augmented, errors

    def probabilities(self, files: Sequence[str | Path], batch_size: int = 16, tta: bool = False,
                      progress: Callable[[int, int], None] | None = None) -> tuple[torch.Tensor, dict[int, str]]:
        """(len(files), classes) probabilities (TTA-averaged when `tta`); unreadable rows are NaN."""
        plain, augmented, errors = self.scores(files, batch_size, tta, progress)
        return (augmented if tta else plain), errors

    def predict(self, files: Sequence[str | Path], top_k: int = 3, batch_size: int = 16, tta: bool = False,
                progress: Callable[[int, int], None] | None = None) -> list[Prediction]:
        return list(self.predict_stream(files, top_k, batch_size, tta, progress))

    def predict_stream(self, files: Sequence[str | Path], top_k: int = 3, batch_size: int = 16, tta: bool = False,
                       progress: Callable[[int, int], None] | None = None) -> Iterator[Prediction]:
        """Predictions in file order, STREAM_FILES at a time: a folder of 100,000 files is written out as it
        goes, and never held (as results) in memory."""
        files = [Path(f) for f in files]
        for first in range(0, len(files), STREAM_FILES):
            part = files[first : first + STREAM_FILES]
            report = (lambda done, _total, first=first: progress(first + done, len(files))) if progress else None
            probabilities, errors = self.probabilities(part, batch_size, tta, report)
            yield from self._results(part, probabilities, errors, top_k)

    def _results(self, files: list[Path], probabilities: torch.Tensor, errors: dict[int, str],
                 top_k: int) -> Iterator[Prediction]:
        k = min(top_k, len(self.classes))
        for index, path in enumerate(files):
            if index in errors:
                yield Prediction(str(path), [], errors[index])
                continue
            score = float(self.novelty[index]) if self.familiarity is not None else None
            if self.model.regression:
                yield Prediction(str(path), [], novelty=score, value=float(probabilities[index, 0]))
                continue
            values, indices = probabilities[index].topk(k)
            top = [(self.classes[int(i)], float(v)) for v, i in zip(values, indices, strict=True)]
            yield Prediction(str(path), top, novelty=score)


def delayed(windows: torch.Tensor, shift: int) -> torch.Tensor:
    """The same windows `shift` samples later, zero-padded at the start (a circular roll would move the end
    of the sound to its beginning)."""
    return torch.nn.functional.pad(windows, (shift, 0))[..., : windows.shape[-1]]
