"""Activation checkpointing: the blocks that train keep no activations for the backward pass; they run their
forward again when the gradients need them (torch.utils.checkpoint). Memory for activations falls to about
one block's worth at the cost of a second forward pass through the trained blocks: what lets a large
backbone (ViT, ConvNeXt, EfficientNetV2) fine-tune in a laptop's memory.

The model's structure and state-dict keys stay as they are (the block's `forward` is wrapped in place), so
checkpoints, model.pt and every export are the same with it or without.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.utils.checkpoint import checkpoint

from tlstudio.core.models.types import Block


def enable(backbone: nn.Module, blocks: list[Block]) -> int:
    """Wrap each block's modules; returns how many were wrapped. A block only recomputes while it trains."""
    wrapped = 0
    for block in blocks:
        for prefix in block.prefixes:
            try:
                module = backbone.get_submodule(prefix.rstrip("."))
            except AttributeError:  # a parameter (a class token), not a module: nothing to recompute
                continue
            if getattr(module, "_tlstudio_checkpointed", False):
                continue
            module.forward = _recomputed(module, module.forward)
            module._tlstudio_checkpointed = True
            wrapped += 1
    return wrapped


def _recomputed(module: nn.Module, forward):
    def run(*args, **kwargs):
        trains = module.training and torch.is_grad_enabled() and any(
            p.requires_grad for p in module.parameters())
        if not trains:  # frozen, evaluating or exporting: the plain forward
            return forward(*args, **kwargs)
        return checkpoint(forward, *args, use_reentrant=False, **kwargs)

    return run
