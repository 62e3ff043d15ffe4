"""Weights files: safe loading, wrong files explained, checksums enforced, real MobileNetV2 features."""

from __future__ import annotations

import pickle
from pathlib import Path

import pytest
import torch

from tlstudio.core.errors import WeightsError
from tlstudio.core.models import weights
from tlstudio.core.models.catalogue import build_torchvision, layout_of
from tlstudio.core.models.registry import get_entry


class _RunsCode:
    def __reduce__(self):
        return (print, ("this would have run code",))


def test_a_pickle_that_would_run_code_is_refused(tmp_path: Path) -> None:
    evil = tmp_path / "evil.pth"
    with open(evil, "wb") as handle:
        pickle.dump({"weight": _RunsCode()}, handle)
    with pytest.raises(WeightsError, match="could run code"):
        weights.read_state_dict(evil)


def test_weights_for_another_architecture_are_explained(tmp_path: Path) -> None:
    resnet = build_torchvision(get_entry("resnet18"))
    path = tmp_path / "resnet18.pth"
    torch.save(resnet.state_dict(), path)
    entry = get_entry("mobilenet_v2")
    net = build_torchvision(entry)
    with pytest.raises(WeightsError, match="not for mobilenet_v2"):
        weights.load_backbone_state(entry, net, weights.read_state_dict(path), layout_of(entry, net).classifier)


def test_any_classifier_size_is_accepted_because_the_head_is_replaced(tmp_path: Path) -> None:
    entry = get_entry("resnet18")
    other = torch.nn.Linear(512, 7)
    net = build_torchvision(entry)
    net.fc = other
    state = {k: v for k, v in net.state_dict().items()}
    fresh = build_torchvision(entry)
    weights.load_backbone_state(entry, fresh, state, "fc")
    assert torch.equal(fresh.layer4[1].conv2.weight, net.layer4[1].conv2.weight)


def test_non_state_dict_files_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "list.pth"
    torch.save([1, 2, 3], path)
    with pytest.raises(WeightsError, match="no state dict"):
        weights.read_state_dict(path)
    text = tmp_path / "text.pth"
    text.write_text("hello")
    with pytest.raises(WeightsError, match="not a readable"):
        weights.read_state_dict(text)


def test_a_file_with_the_wrong_checksum_is_not_placed(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(weights, "checkpoints_dir", lambda: tmp_path / "hub")
    entry = get_entry("resnet18")  # resnet18-f37072fd.pth
    fake = tmp_path / entry.weights_filename
    torch.save(build_torchvision(entry).state_dict(), fake)
    with pytest.raises(WeightsError, match="checksum"):
        weights._place(fake, entry)
    assert not weights.is_cached(entry)


def test_missing_weights_offline_say_what_to_do(monkeypatch, tmp_path: Path) -> None:
    monkeypatch.setattr(weights, "checkpoints_dir", lambda: tmp_path / "empty-hub")
    with pytest.raises(WeightsError) as info:
        weights.pretrained_state(get_entry("mobilenet_v2"), "imagenet", allow_download=False)
    assert "tlstudio weights fetch mobilenet_v2" in info.value.hint


def test_the_real_mobilenet_v2_file_is_torchvisions_own() -> None:
    """The README's set-up places it; a missing file is a set-up failure, not a reason to skip."""
    entry = get_entry("mobilenet_v2")
    path = weights.cached_path(entry)
    assert path.is_file(), "run scripts/setup.sh: it fetches the MobileNetV2 weights"
    assert weights.sha256_of(path).startswith("b0353104")
    net = build_torchvision(entry)
    weights.load_backbone_state(entry, net, weights.read_state_dict(path), "classifier.1")
