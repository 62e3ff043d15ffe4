"""The catalogue: every backbone's blocks cover its parameters exactly once, in order, with a real head."""

from __future__ import annotations

import pytest
import torch

from tlstudio.core.errors import ConfigError
from tlstudio.core.models.catalogue import CATALOGUE
from tlstudio.core.models.registry import get_entry
from tlstudio.core.models.transfer_model import build_model

REQUIRED = {"resnet18", "resnet50", "mobilenet_v2", "mobilenet_v3_small", "mobilenet_v3_large", "efficientnet_b0",
            "efficientnet_b2", "efficientnet_v2_s", "convnext_tiny", "regnet_y_800mf", "densenet121", "vgg16",
            "vit_b_16", "swin_t"}


def test_catalogue_has_the_promised_backbones() -> None:
    assert set(CATALOGUE) >= REQUIRED


@pytest.mark.parametrize("name", sorted(REQUIRED))
def test_blocks_partition_the_backbone(name: str) -> None:
    entry = get_entry(name)
    model = build_model(entry, num_classes=3)
    owners: dict[str, list[str]] = {}
    for param_name, _ in model.backbone.named_parameters():
        owners[param_name] = [b.label for b in model.blocks if b.owns(param_name)]
    orphans = [p for p, o in owners.items() if not o]
    doubles = [p for p, o in owners.items() if len(o) > 1]
    assert not orphans, f"{name}: parameters in no block: {orphans[:5]}"
    assert not doubles, f"{name}: parameters in two blocks: {doubles[:5]}"
    assert len(model.blocks) >= 4
    # blocks are ordered input -> output: the first block owns the first parameter
    first_param = next(iter(owners))
    assert model.blocks[0].owns(first_param)
    assert model.head.out_features == 3
    assert model.head.in_features == model.layout.feature_dim


@pytest.mark.parametrize("name", ["resnet18", "mobilenet_v3_small", "vit_b_16", "efficientnet_b0"])
def test_forward_gives_one_logit_per_class(name: str) -> None:
    entry = get_entry(name)
    model = build_model(entry, num_classes=4, head="mlp").eval()
    crop = entry.preprocess().crop
    with torch.no_grad():
        out = model(torch.rand(2, 3, crop, crop))
    assert out.shape == (2, 4)


def test_preprocessing_and_facts_come_from_the_weights() -> None:
    entry = get_entry("efficientnet_b2")
    pre = entry.preprocess()
    assert (pre.crop, pre.resize, pre.interpolation) == (288, 288, "bicubic")
    meta = get_entry("mobilenet_v2").meta()
    assert meta["input_size"] == 224 and 3_000_000 < meta["params"] < 4_000_000
    assert get_entry("mobilenet_v2").weights_filename == "mobilenet_v2-b0353104.pth"


def test_unknown_backbone_lists_the_choices() -> None:
    with pytest.raises(ConfigError) as info:
        get_entry("resnet9000")
    assert "resnet18" in info.value.hint
