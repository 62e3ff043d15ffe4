"""A torchaudio speech encoder as a backbone: waveforms in, one vector per clip out."""

from __future__ import annotations

from torch import nn


class PooledEncoder(nn.Module):
    """(B, samples) -> (B, 768): the transformer's output averaged over time."""

    def __init__(self, encoder_model: nn.Module) -> None:
        super().__init__()
        self.encoder_model = encoder_model

    def forward(self, waves):
        hidden, _ = self.encoder_model(waves)
        return hidden.mean(dim=1)
