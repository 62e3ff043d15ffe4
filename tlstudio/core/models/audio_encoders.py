"""Speech/audio encoders from torchaudio's pipelines (wav2vec2 base, HuBERT base) as studio backbones.

They take raw 16 kHz waveforms; their blocks are the CNN feature encoder, the projection, then the 12
transformer layers (so "unfreeze K" counts transformer layers); features are averaged over time.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING, Any

from tlstudio.core.models.registry import register
from tlstudio.core.models.types import Block, Layout

if TYPE_CHECKING:
    from torch import nn

PREFIX = "encoder_model."




@lru_cache(maxsize=4)
def _param_count(bundle_name: str) -> int:
    import torch
    import torchaudio

    with torch.device("meta"):
        model = torchaudio.models.wav2vec2_model(**getattr(torchaudio.pipelines, bundle_name)._params)
    return sum(p.numel() for p in model.parameters())


@dataclass(frozen=True)
class AudioEncoderEntry:
    name: str
    bundle_name: str
    summary: str
    family: str = "wav2vec2"
    modality: str = "audio"
    pretraining: str = "LibriSpeech (960 h of read English speech, self-supervised)"

    def bundle(self) -> Any:
        import torchaudio

        return getattr(torchaudio.pipelines, self.bundle_name)

    @property
    def weights_filename(self) -> str:
        return self.bundle()._path

    @property
    def weights_url(self) -> str:
        return f"https://download.pytorch.org/torchaudio/models/{self.weights_filename}"

    def meta(self) -> dict[str, Any]:
        return {"params": _param_count(self.bundle_name), "imagenet_top1": None, "gflops": None,
                "file_mb": 360.0, "input_size": "16 kHz"}

    def preprocess(self) -> None:
        return None

    def build_backbone(self, state: dict | None = None) -> tuple[nn.Module, Layout]:
        import torchaudio

        model = torchaudio.models.wav2vec2_model(**self.bundle()._params)
        if state is not None:
            from tlstudio.core.models.weights import load_backbone_state

            load_backbone_state(self, model, state, classifier="")
        layers = len(model.encoder.transformer.layers)
        blocks = [
            Block("feature encoder (CNN)", (f"{PREFIX}feature_extractor.",)),
            Block("projection", (f"{PREFIX}encoder.feature_projection.", f"{PREFIX}encoder.transformer.pos_conv_embed.",
                                 f"{PREFIX}encoder.transformer.layer_norm.")),
        ] + [Block(f"transformer layer {i + 1}", (f"{PREFIX}encoder.transformer.layers.{i}.",)) for i in range(layers)]
        from tlstudio.core.models.pooled_encoder import PooledEncoder

        return PooledEncoder(model), Layout(blocks, "", int(model.encoder.feature_projection.projection.out_features))


AUDIO_ENCODERS = {
    entry.name: entry
    for entry in [
        AudioEncoderEntry("wav2vec2_base", "WAV2VEC2_BASE",
                          "Self-supervised speech encoder (LibriSpeech 960 h); strong for speech. Slow on a CPU."),
        AudioEncoderEntry("hubert_base", "HUBERT_BASE",
                          "Self-supervised speech encoder (LibriSpeech 960 h); strong for speech. Slow on a CPU."),
    ]
}
register(*AUDIO_ENCODERS.values())
