""""Unfreeze the top K blocks" -> which parameters train, at which learning rate, with BatchNorm handled.

K=0 is feature extraction (only the new head trains); K=len(blocks) is full fine-tuning. Frozen blocks
are put in eval mode during training so their BatchNorm statistics stay those of the pretraining.
"""

from __future__ import annotations

from dataclasses import dataclass

from torch import nn

from tlstudio.core.errors import ConfigError
from tlstudio.core.models.transfer_model import TransferModel
from tlstudio.core.models.types import Block


@dataclass(frozen=True)
class FreezePlan:
    unfreeze: int
    trainable_blocks: list[str]
    frozen_blocks: list[str]
    head_params: int
    backbone_trainable_params: int
    total_params: int

    @property
    def trainable_params(self) -> int:
        return self.head_params + self.backbone_trainable_params


def parse_unfreeze(value: str | int, n_blocks: int) -> int:
    """'all' or an integer 0..n_blocks; negative counts from the bottom ('-1' = all but the first block)."""
    if isinstance(value, str):
        text = value.strip().lower()
        if text in ("all", "full"):
            return n_blocks
        try:
            value = int(text)
        except ValueError:
            raise ConfigError(f"--unfreeze takes a number or 'all', not '{value}'.") from None
    if value < 0:
        value = n_blocks + value
    if not 0 <= value <= n_blocks:
        raise ConfigError(f"This backbone has {n_blocks} blocks; --unfreeze must be 0..{n_blocks} or 'all'.")
    return value


def _params_of(model: TransferModel, block: Block) -> list[tuple[str, nn.Parameter]]:
    return [(name, p) for name, p in model.backbone.named_parameters() if block.owns(name)]


def plan(model: TransferModel, unfreeze: int) -> FreezePlan:
    blocks = model.blocks
    trainable = blocks[len(blocks) - unfreeze :] if unfreeze else []
    frozen = blocks[: len(blocks) - unfreeze]
    return FreezePlan(
        unfreeze=unfreeze,
        trainable_blocks=[block.label for block in trainable],
        frozen_blocks=[block.label for block in frozen],
        head_params=sum(p.numel() for p in model.head.parameters()),
        backbone_trainable_params=sum(p.numel() for block in trainable for _, p in _params_of(model, block)),
        total_params=sum(p.numel() for p in model.parameters()),
    )


def apply(model: TransferModel, unfreeze: int) -> FreezePlan:
    """Set requires_grad block by block and keep frozen blocks' normalisation layers in eval mode.

    Modules that belong to no block (a classifier's dropout left in front of the removed last layer,
    pooling) sit above every block: with nothing unfrozen they are frozen too, so feature extraction
    sees the same features in training as in evaluation.
    """
    result = plan(model, unfreeze)
    trainable_labels = set(result.trainable_blocks)
    trainable_blocks = [block for block in model.blocks if block.label in trainable_labels]
    frozen_blocks = [block for block in model.blocks if block.label not in trainable_labels]
    for name, parameter in model.backbone.named_parameters():
        parameter.requires_grad = any(block.owns(name) for block in trainable_blocks)
    for parameter in model.head.parameters():
        parameter.requires_grad = True
    frozen_modules = [
        module
        for name, module in model.backbone.named_modules()
        if name and (unfreeze == 0 or any(block.owns(f"{name}.") for block in frozen_blocks))
    ]
    model.set_frozen_modules(frozen_modules)
    return result


def param_groups(model: TransferModel, head_lr: float, backbone_lr: float, weight_decay: float) -> list[dict]:
    """Head and backbone at their own learning rates; no weight decay on norms and biases."""
    groups: list[dict] = []
    for role, module, lr in (("head", model.head, head_lr), ("backbone", model.backbone, backbone_lr)):
        decay, no_decay = [], []
        for _name, parameter in module.named_parameters():
            if not parameter.requires_grad:
                continue
            (no_decay if parameter.ndim <= 1 else decay).append(parameter)
        for params, wd in ((decay, weight_decay), (no_decay, 0.0)):
            if params:
                groups.append({"params": params, "lr": lr, "weight_decay": wd, "role": role})
    return groups
