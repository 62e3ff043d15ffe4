"""Activation checkpointing (--checkpointing): the same gradients as without, the same state-dict keys, and
a fine-tune that trains with it."""

from __future__ import annotations

import copy

import torch

from tlstudio.core.data.scan import scan
from tlstudio.core.models import checkpointing, freezing
from tlstudio.core.models.registry import get_entry
from tlstudio.core.models.transfer_model import build_model
from tlstudio.core.store.runs import RunDir
from tlstudio.core.training import engine
from tlstudio.core.training.config import TrainConfig


def _gradients(model, inputs, labels) -> dict[str, torch.Tensor]:
    torch.manual_seed(3)  # the same dropout masks in both models
    model.train()
    torch.nn.functional.cross_entropy(model(inputs), labels).backward()
    return {name: p.grad.clone() for name, p in model.named_parameters() if p.grad is not None}


def test_recomputed_blocks_give_the_same_gradients() -> None:
    torch.manual_seed(0)
    plain = build_model(get_entry("mobilenet_v3_small"), 3, "mlp", None)
    freezing.apply(plain, 3)
    recomputing = copy.deepcopy(plain)
    keys = list(recomputing.state_dict())
    assert checkpointing.enable(recomputing.backbone, recomputing.blocks) == len(recomputing.blocks)
    assert list(recomputing.state_dict()) == keys  # model.pt and the exports do not see it
    inputs, labels = torch.randn(6, 3, 96, 96), torch.tensor([0, 1, 2, 0, 1, 2])
    expected, found = _gradients(plain, inputs, labels), _gradients(recomputing, inputs, labels)
    assert expected.keys() == found.keys() and len(found) > 2
    for name, grad in expected.items():
        torch.testing.assert_close(found[name], grad, rtol=1e-4, atol=1e-5, msg=name)
    recomputing.eval()
    with torch.no_grad():  # evaluating: the plain forward, nothing recomputed
        torch.testing.assert_close(recomputing(inputs), plain.eval()(inputs))


def test_fine_tune_with_checkpointing(shapes_dir, tmp_path) -> None:
    config = TrainConfig(data=str(shapes_dir), backbone="mobilenet_v3_small", pretrained="none", batch_size=16,
                         epochs=1, unfreeze="2", checkpointing=True)
    metrics = engine.train(scan(shapes_dir), config, RunDir.create(tmp_path / "run", config.backbone),
                           lambda _e: None)
    assert metrics["status"] == "completed" and not metrics["fast_path"]
