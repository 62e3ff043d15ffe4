"""model.pt: the trained classifier as plain tensors plus what rebuilds it (backbone, head, classes,
input pipeline). Loaded with weights_only=True, so a file that would run code is refused.
"""

from __future__ import annotations

from typing import Any

from tlstudio.core.errors import RunError
from tlstudio.core.store.runs import RunDir

MODEL_FORMAT = "tlstudio-model"


def model_payload(backbone: str, head: str, classes: list[str], pipeline: dict, state_dict: dict,
                  extra: dict | None = None) -> dict[str, Any]:
    """`pipeline`: how inputs are prepared (image preprocessing, or sound settings and front end)."""
    return {
        "format": MODEL_FORMAT,
        "version": 1,
        "backbone": backbone,
        "head": head,
        "classes": list(classes),
        "pipeline": pipeline,
        "state_dict": state_dict,
        **(extra or {}),
    }


def load_model(run: RunDir):  # -> tuple[TransferModel, list[str], ImagePipeline | AudioPipeline]
    """Rebuild the trained classifier and its input pipeline from a run folder (weights_only load)."""
    from tlstudio.core.data.pipelines import pipeline_from_description
    from tlstudio.core.models.registry import get_entry
    from tlstudio.core.models.transfer_model import build_model

    payload = run.load_torch("model.pt")
    if not isinstance(payload, dict) or payload.get("format") != MODEL_FORMAT:
        raise RunError(f"{run.file('model.pt')} is not a studio model file.")
    if "pipeline" not in payload:
        raise RunError(f"{run.file('model.pt')} was made by an older version of the studio.", "Train the run again.")
    entry = get_entry(payload["backbone"])
    classes = payload["classes"]
    head_bias = [k for k in payload["state_dict"] if k.startswith("head.") and k.endswith("bias")]
    if head_bias and payload["state_dict"][head_bias[-1]].shape[0] != len(classes):
        raise RunError(
            f"{run.file('model.pt')} has a head for {payload['state_dict'][head_bias[-1]].shape[0]} classes "
            f"but lists {len(classes)} class names; the file is inconsistent.",
            "Train the run again.",
        )
    check_payload(payload, run.file("model.pt"))
    pipeline = pipeline_from_description(payload["pipeline"])
    target = payload.get("target") if payload.get("task") == "regression" else None
    model = build_model(entry, len(classes), payload["head"], frontend=pipeline.frontend("none"), target=target)
    try:
        model.load_state_dict(payload["state_dict"])
    except RuntimeError as exc:
        raise RunError(f"{run.file('model.pt')} does not fit a {entry.name} model; it may be damaged.",
                       "Train the run again.") from exc
    model.temperature = float(payload.get("temperature", 1.0))
    model.novelty = payload.get("novelty")  # the training files' features, for "unlike anything trained on"
    model.eval()
    return model, payload["classes"], pipeline


def check_payload(payload: dict[str, Any], path) -> None:
    """Values a model file brings are checked before anything is sized by them: a tampered file must not
    make the studio allocate gigabytes (a 3,600-second window) or crash on a wrong type."""
    import math

    def bad(what: str) -> RunError:
        return RunError(f"{path} is damaged or was altered ({what}).", "Train the run again, or use its checkpoint.")

    classes = payload.get("classes")
    task = payload.get("task", "classification")
    if task not in ("classification", "regression"):
        raise bad("its task")
    if task == "regression":
        target = payload.get("target")
        if not isinstance(target, dict) or not all(
                isinstance(target.get(k), int | float) and not isinstance(target.get(k), bool)
                and math.isfinite(target[k]) for k in ("mean", "std")) or not target["std"] > 0:
            raise bad("its target scale")
    if not isinstance(classes, list) or not (1 if task == "regression" else 2) <= len(classes) <= 100_000 or \
            not all(isinstance(c, str) for c in classes) or len(set(classes)) != len(classes):
        raise bad("its class list")
    if not isinstance(payload.get("backbone"), str) or payload.get("head") not in ("linear", "mlp"):
        raise bad("its backbone or head")
    temperature = payload.get("temperature", 1.0)
    if not isinstance(temperature, int | float) or isinstance(temperature, bool) or \
            not math.isfinite(temperature) or not 0.05 <= temperature <= 20.0:
        raise bad("its confidence temperature")
    if not novelty_data_ok(payload.get("novelty")):
        raise bad("its familiarity data")
    pipeline = payload.get("pipeline")
    if not isinstance(pipeline, dict):
        raise bad("its input pipeline")
    if pipeline.get("modality", "image") == "audio":
        audio = pipeline.get("audio")
        limits = {"sample_rate": (4000, 192000), "window_seconds": (0.1, 30.0), "hop_seconds": (0.01, 30.0),
                  "n_mels": (8, 512), "n_fft": (64, 16384), "mel_hop": (16, 8192), "top_db": (10.0, 200.0)}
        if not isinstance(audio, dict):
            raise bad("its sound settings")
        for key, (low, high) in limits.items():
            value = audio.get(key)
            if value is not None and (not isinstance(value, int | float) or isinstance(value, bool)
                                      or not math.isfinite(value) or not low <= value <= high):
                raise bad(f"sound setting {key}={value!r}")
    else:
        pre = pipeline.get("preprocess")
        if not isinstance(pre, dict):
            raise bad("its image preprocessing")
        for key in ("resize", "crop"):
            value = pre.get(key)
            if not isinstance(value, int) or not 8 <= value <= 4096:
                raise bad(f"image setting {key}={value!r}")
        for key in ("mean", "std"):
            values = pre.get(key)
            if not isinstance(values, list | tuple) or len(values) != 3 or \
                    not all(isinstance(v, int | float) and math.isfinite(v) for v in values):
                raise bad(f"image setting {key}")
        if not all(v > 0 for v in pre["std"]) or pre.get("interpolation") not in ("bilinear", "bicubic"):
            raise bad("image normalisation")


def novelty_data_ok(novelty: Any) -> bool:
    """A model file's familiarity data (inference/novelty.py) is well formed: it comes from a file a user may
    have been sent, and it sizes a matrix product."""
    import math

    import torch

    if novelty is None:
        return True
    if not isinstance(novelty, dict):
        return False
    bank, threshold, k = novelty.get("bank"), novelty.get("threshold"), novelty.get("k")
    return (isinstance(bank, torch.Tensor) and bank.ndim == 2 and 0 < bank.shape[0] <= 100_000
            and isinstance(threshold, float) and math.isfinite(threshold) and 0 <= threshold <= 2
            and isinstance(k, int) and 1 <= k <= 100)
