"""Log-mel front end: turns waveforms into the 3-channel 'images' an ImageNet backbone understands.

It has no parameters (the mel filter bank is a buffer), lives inside the model, and so travels with
every checkpoint and export: the same spectrogram in training, in the studio and in an exported file.
"""

from __future__ import annotations

import torch
import torchaudio
from torch import nn

from tlstudio.core.media.audio import AudioSettings

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


class LogMelImage(nn.Module):
    def __init__(self, settings: AudioSettings, spec_augment: bool = False) -> None:
        super().__init__()
        self.mel = torchaudio.transforms.MelSpectrogram(
            sample_rate=settings.sample_rate, n_fft=settings.n_fft, hop_length=settings.mel_hop,
            n_mels=settings.n_mels, power=2.0,
        )
        self.top_db = settings.top_db
        self.spec_augment = spec_augment
        self.freq_mask = torchaudio.transforms.FrequencyMasking(freq_mask_param=max(1, settings.n_mels // 8))
        self.time_mask = torchaudio.transforms.TimeMasking(time_mask_param=max(1, settings.window // settings.mel_hop
                                                                                // 8))
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), persistent=False)

    def forward(self, waves: torch.Tensor) -> torch.Tensor:
        power = self.mel(waves.float())  # (B, n_mels, frames)
        db = 10.0 * torch.log10(power.clamp_min(1e-10))
        # loudness-invariant: 0 dB at each clip's peak, floor at -top_db; then [0, 1]
        peak = db.amax(dim=(-2, -1), keepdim=True)
        image = ((db - peak).clamp_min(-self.top_db) + self.top_db) / self.top_db
        image = image.flip(-2).unsqueeze(1)  # low frequencies at the bottom, like a picture of it
        if self.training and self.spec_augment:
            image = self.time_mask(self.freq_mask(image))
        return (image.expand(-1, 3, -1, -1) - self.mean) / self.std
