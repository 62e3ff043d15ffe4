"""Unfreeze-K: which parameters train, BatchNorm in frozen blocks, learning rates per group."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from tlstudio.core.errors import ConfigError
from tlstudio.core.models import freezing
from tlstudio.core.models.registry import get_entry
from tlstudio.core.models.transfer_model import build_model


@pytest.fixture()
def resnet() -> freezing.TransferModel:
    return build_model(get_entry("resnet18"), num_classes=2)


def trainable_names(model: nn.Module) -> set[str]:
    return {name for name, p in model.named_parameters() if p.requires_grad}


def test_feature_extraction_trains_only_the_head(resnet) -> None:
    plan = freezing.apply(resnet, 0)
    assert trainable_names(resnet) == {"head.weight", "head.bias"}
    assert plan.trainable_blocks == [] and plan.trainable_params == 512 * 2 + 2


def test_top_k_blocks_train(resnet) -> None:
    plan = freezing.apply(resnet, 2)
    assert plan.trainable_blocks == ["layer3", "layer4"]
    names = trainable_names(resnet)
    assert any(n.startswith("backbone.layer4.") for n in names)
    assert any(n.startswith("backbone.layer3.") for n in names)
    assert not any(n.startswith(("backbone.layer2.", "backbone.conv1")) for n in names)
    expected = sum(p.numel() for n, p in resnet.backbone.named_parameters() if n.startswith(("layer3.", "layer4.")))
    assert plan.backbone_trainable_params == expected


def test_all_means_full_fine_tuning(resnet) -> None:
    k = freezing.parse_unfreeze("all", len(resnet.blocks))
    freezing.apply(resnet, k)
    assert all(p.requires_grad for p in resnet.parameters())


def test_frozen_batchnorm_stays_in_eval_mode(resnet) -> None:
    freezing.apply(resnet, 1)
    resnet.train()
    assert not resnet.backbone.bn1.training
    assert not resnet.backbone.layer3[0].bn1.training
    assert resnet.backbone.layer4[0].bn1.training
    before = resnet.backbone.layer2[0].bn1.running_mean.clone()
    resnet(torch.rand(2, 3, 64, 64))
    assert torch.equal(before, resnet.backbone.layer2[0].bn1.running_mean)


def test_backbone_gets_the_lower_learning_rate(resnet) -> None:
    freezing.apply(resnet, 1)
    groups = freezing.param_groups(resnet, head_lr=1e-3, backbone_lr=1e-4, weight_decay=0.01)
    lrs = {g["role"]: g["lr"] for g in groups}
    assert lrs == {"head": 1e-3, "backbone": 1e-4}
    assert all(g["weight_decay"] == 0.0 for g in groups if all(p.ndim <= 1 for p in g["params"]))


@pytest.mark.parametrize("value,expected", [("0", 0), ("2", 2), ("all", 5), ("-1", 4), (3, 3)])
def test_parse_unfreeze(value, expected) -> None:
    assert freezing.parse_unfreeze(value, 5) == expected


@pytest.mark.parametrize("value", ["7", "lots"])
def test_parse_unfreeze_refuses_nonsense(value) -> None:
    with pytest.raises(ConfigError):
        freezing.parse_unfreeze(value, 5)
