"""The classifier the studio trains: a pretrained backbone (its old classifier removed) plus a new head."""

from __future__ import annotations

import torch
from torch import nn

from tlstudio.core.backbones import BackboneEntry, Block, Layout, build_torchvision, layout_of

HEADS = ("linear", "mlp")


def make_head(kind: str, feature_dim: int, num_classes: int, hidden: int = 512, dropout: float = 0.3) -> nn.Module:
    if kind == "linear":
        return nn.Linear(feature_dim, num_classes)
    if kind == "mlp":
        return nn.Sequential(
            nn.Linear(feature_dim, hidden), nn.GELU(), nn.Dropout(dropout), nn.Linear(hidden, num_classes)
        )
    raise ValueError(f"unknown head {kind!r}")


class TransferModel(nn.Module):
    """backbone -> features -> head. Frozen blocks keep BatchNorm/Dropout in eval mode while training."""

    def __init__(self, backbone: nn.Module, head: nn.Module, layout: Layout) -> None:
        super().__init__()
        self.backbone = backbone
        self.head = head
        self.layout = layout
        self._frozen_modules: list[nn.Module] = []

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.head(self.backbone(images))

    def features(self, images: torch.Tensor) -> torch.Tensor:
        return self.backbone(images)

    @property
    def blocks(self) -> list[Block]:
        return self.layout.blocks

    def set_frozen_modules(self, modules: list[nn.Module]) -> None:
        self._frozen_modules = modules
        self.train(self.training)

    def train(self, mode: bool = True) -> TransferModel:
        super().train(mode)
        for module in self._frozen_modules:
            module.eval()
        return self


def strip_classifier(model: nn.Module, path: str) -> None:
    parent_path, _, leaf = path.rpartition(".")
    parent = model.get_submodule(parent_path) if parent_path else model
    setattr(parent, leaf, nn.Identity())


def build_model(
    entry: BackboneEntry,
    num_classes: int,
    head: str = "linear",
    backbone_state: dict[str, torch.Tensor] | None = None,
) -> TransferModel:
    """`backbone_state` is a torchvision state dict (pretrained weights); None leaves weights random."""
    net = build_torchvision(entry)
    layout = layout_of(entry, net)
    if backbone_state is not None:
        from tlstudio.core.weights import load_backbone_state

        load_backbone_state(entry, net, backbone_state, layout.classifier)
    strip_classifier(net, layout.classifier)
    return TransferModel(net, make_head(head, layout.feature_dim, num_classes), layout)
