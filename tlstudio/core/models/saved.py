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
    pipeline = pipeline_from_description(payload["pipeline"])
    model = build_model(entry, len(classes), payload["head"], frontend=pipeline.frontend("none"))
    try:
        model.load_state_dict(payload["state_dict"])
    except RuntimeError as exc:
        raise RunError(f"{run.file('model.pt')} does not fit a {entry.name} model; it may be damaged.",
                       "Train the run again.") from exc
    model.eval()
    return model, payload["classes"], pipeline
