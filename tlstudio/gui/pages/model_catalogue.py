"""What the Model page learns in the background: the catalogue of backbones (and a row in words), a
backbone's blocks, and the devices to train on (with the picker's "All N GPUs together" item)."""

from __future__ import annotations

import sys
from typing import Any

from tlstudio.core.models.registry import default_settings

TOGETHER = "*"  # a picker item "cuda*4": four processes together, one GPU each


def catalogue_rows(_progress, _control) -> list[dict[str, Any]]:
    from tlstudio.core.models.registry import all_entries
    from tlstudio.core.models.weights import is_cached

    return [{"name": e.name, "summary": e.summary, "cached": is_cached(e), "modality": e.modality, **e.meta()}
            for e in all_entries().values()]


def block_info(name: str, num_classes: int, head: str) -> dict[str, Any]:
    from tlstudio.core.models.registry import get_entry
    from tlstudio.core.models.transfer_model import build_model

    model = build_model(get_entry(name), max(num_classes, 2), head)
    sizes = []
    for block in model.blocks:
        sizes.append(sum(p.numel() for n, p in model.backbone.named_parameters() if block.owns(n)))
    return {"labels": [b.label for b in model.blocks], "sizes": sizes,
            "head": sum(p.numel() for p in model.head.parameters()),
            "total": sum(p.numel() for p in model.parameters())}


def describe(row: dict[str, Any], sound: bool) -> str:
    """A catalogue row in words (rich text), for pictures or for sound."""
    if row["modality"] == "image":
        via = " Sound is turned into a log-mel spectrogram picture first." if sound else ""
        return (f"<b>{row['name']}</b>: {row['summary']} {row['params'] / 1e6:.1f} M parameters, "
                f"{row['gflops']:.2f} GFLOPs per image, {row['imagenet_top1']:.1f}% on ImageNet.{via}")
    why = (" <i>The default for sound, measured on real recordings: fully fine-tuned for short clips "
           "(spoken digits by an unheard speaker 0.93, vs 0.37 frozen), frozen for long recordings, whose "
           "windows are pooled (environmental sounds 0.975, vs 0.90 fine-tuned).</i>"
           if row["name"] == default_settings("audio")["backbone"] else "")
    return (f"<b>{row['name']}</b>: {row['summary']} {row['params'] / 1e6:.1f} M parameters; "
            f"the slider counts its blocks.{why}")


def detect_devices(_progress, _control) -> list[tuple[str, str]]:
    """(id, words) per device; with two GPUs or more, first an item that trains on all of them together."""
    from tlstudio.core.devices import available

    found = available()
    gpus = [d for d in found if d.id.startswith("cuda:")]
    together = ([(device_choice("cuda", len(gpus)), f"All {len(gpus)} GPUs together ({len(gpus)} processes, "
                  "DistributedDataParallel)")] if len(gpus) > 1 and sys.platform.startswith("linux") else [])
    # (Linux only: NCCL, which DistributedDataParallel needs across GPUs, and stopping the processes with
    # Ctrl-C so that they save, are Linux's)
    return together + [(d.id, d.describe()) for d in found]


def device_choice(device: str, devices: int) -> str:
    """The picker's item for a configuration."""
    return f"{device}{TOGETHER}{devices}" if devices > 1 else device


def chosen_device(choice: str | None) -> tuple[str, int]:
    """(device, processes) for the picker's item."""
    device, _, count = (choice or "auto").partition(TOGETHER)
    return device, int(count) if count else 1
