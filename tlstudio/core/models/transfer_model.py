"""The classifier the studio trains: a pretrained backbone (its old classifier removed) plus a new head."""

from __future__ import annotations

import torch
from torch import nn

from tlstudio.core.models.types import Block, Layout

HEADS = ("linear", "mlp")


def make_head(kind: str, feature_dim: int, num_classes: int, hidden: int = 512, dropout: float = 0.3) -> nn.Module:
    if kind == "linear":
        return nn.Linear(feature_dim, num_classes)
    if kind == "mlp":
        return nn.Sequential(
            nn.Linear(feature_dim, hidden), nn.GELU(), nn.Dropout(dropout), nn.Linear(hidden, num_classes)
        )
    raise ValueError(f"unknown head {kind!r}")


class ValueHead(nn.Module):
    """A regression head: one output learned on standardised targets (mean 0, spread 1, so one learning rate
    suits seconds and kilograms alike), returned in the target's own unit. Evaluation, predict and every
    export read the number as the user wrote it in labels.csv."""

    def __init__(self, inner: nn.Module, mean: float, std: float) -> None:
        super().__init__()
        self.inner = inner
        self.register_buffer("target_mean", torch.tensor(float(mean)))
        self.register_buffer("target_std", torch.tensor(float(std)))

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        # float32 whatever autocast chose for the layer: bf16 would round 2,000 to steps of 8, fp16 overflow
        return self.inner(features).float() * self.target_std + self.target_mean


class TransferModel(nn.Module):
    """[frontend ->] backbone -> features -> head. Frozen blocks keep BatchNorm/Dropout in eval mode.

    The optional frontend (the log-mel spectrogram for sound) has no parameters and travels with the model.
    """

    def __init__(self, backbone: nn.Module, head: nn.Module, layout: Layout, frontend: nn.Module | None = None) -> None:
        super().__init__()
        self.frontend = frontend
        self.backbone = backbone
        self.head = head
        self.layout = layout
        self._frozen_modules: list[nn.Module] = []
        # from model.pt after training: applied to the pooled probabilities (calibration.sharpen), not here
        self.temperature = 1.0
        self.novelty: dict | None = None  # the training files' features (model.pt), for unfamiliar inputs

    @property
    def regression(self) -> bool:
        return isinstance(self.head, ValueHead)

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(inputs))

    def features(self, inputs: torch.Tensor) -> torch.Tensor:
        if self.frontend is not None:
            inputs = self.frontend(inputs)
        return self.backbone(inputs)

    def head_classes(self) -> int:
        """Outputs of the head (its last Linear layer)."""
        linears = [m for m in self.head.modules() if isinstance(m, nn.Linear)]
        return linears[-1].out_features

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
    entry,
    num_classes: int,
    head: str = "linear",
    backbone_state: dict[str, torch.Tensor] | None = None,
    frontend: nn.Module | None = None,
    target: dict | None = None,
) -> TransferModel:
    """`backbone_state` is the pretrained state dict; None leaves the weights random. With `target` (a
    regression's mean and std) the head has one output, in the target's unit."""
    net, layout = entry.build_backbone(backbone_state)
    if target:
        return TransferModel(net, ValueHead(make_head(head, layout.feature_dim, 1), target["mean"], target["std"]),
                             layout, frontend)
    return TransferModel(net, make_head(head, layout.feature_dim, num_classes), layout, frontend)


MAX_ROWS = 64  # inputs per forward pass: memory stays bounded whatever the number of windows of a clip


def chunked(forward, inputs: torch.Tensor, max_rows: int = MAX_ROWS) -> torch.Tensor:
    """`forward` over `inputs` in slices of at most `max_rows` rows (a 1-hour clip is 7,200 windows)."""
    if inputs.ndim == 4:
        inputs = inputs.contiguous(memory_format=torch.channels_last)
    if inputs.shape[0] <= max_rows:
        return forward(inputs)
    return torch.cat([forward(part) for part in torch.split(inputs, max_rows)])
