"""YAMNet in PyTorch: Google's AudioSet sound classifier (MobileNetV1 on log-mel patches), with its front end.

Why a re-implementation: the published model is TensorFlow-only. This module reproduces the published
recipe (tensorflow/models research/audioset/yamnet: params.py, features.py, yamnet.py) so that the weights
converted by `yamnet_weights` give the same embeddings and AudioSet scores:

- front end: 16 kHz mono waveform, padded like YAMNet's frames model, 25 ms periodic-Hann STFT frames with a
  10 ms hop and a 512-point FFT, magnitude, 64 HTK-mel bands over 125-7500 Hz (TensorFlow's
  `linear_to_mel_weight_matrix`), log(mel + 0.001), then 96-frame (0.96 s) patches every 48 frames (0.48 s);
- network: a 3x3/2 conv with 32 channels and 13 depthwise-separable blocks, TensorFlow "SAME" padding (extra
  row/column at the end when the padding is odd), batch norms with a learned shift only (no scale,
  epsilon 1e-4), ReLU, global average pooling -> 1024-d embedding, dense 1024 -> 521 AudioSet logits
  (scores are the sigmoid of the logits: AudioSet is multi-label).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn


@dataclass(frozen=True)
class YamnetParams:
    """The hyperparameters YAMNet was trained with (only the patch hop may be changed freely)."""

    sample_rate: int = 16000
    stft_window_seconds: float = 0.025
    stft_hop_seconds: float = 0.010
    mel_bands: int = 64
    mel_min_hz: float = 125.0
    mel_max_hz: float = 7500.0
    log_offset: float = 0.001
    patch_window_seconds: float = 0.96
    patch_hop_seconds: float = 0.48
    num_classes: int = 521
    batchnorm_epsilon: float = 1e-4

    @property
    def window_samples(self) -> int:
        return round(self.sample_rate * self.stft_window_seconds)  # 400

    @property
    def hop_samples(self) -> int:
        return round(self.sample_rate * self.stft_hop_seconds)  # 160

    @property
    def fft_length(self) -> int:
        return 2 ** math.ceil(math.log2(self.window_samples))  # 512

    @property
    def patch_frames(self) -> int:
        return round(self.patch_window_seconds / self.stft_hop_seconds)  # 96

    @property
    def patch_hop_frames(self) -> int:
        return round(self.patch_hop_seconds / self.stft_hop_seconds)  # 48


PARAMS = YamnetParams()

# (kernel, stride, output channels): the first entry is a full conv, the others depthwise-separable blocks.
LAYER_DEFS: tuple[tuple[int, int, int], ...] = (
    (3, 2, 32),
    (3, 1, 64),
    (3, 2, 128),
    (3, 1, 128),
    (3, 2, 256),
    (3, 1, 256),
    (3, 2, 512),
    (3, 1, 512),
    (3, 1, 512),
    (3, 1, 512),
    (3, 1, 512),
    (3, 1, 512),
    (3, 2, 1024),
    (3, 1, 1024),
)
EMBEDDING_SIZE = 1024


# ----------------------------------------------------------------------------- front end


def _hertz_to_mel(hertz: np.ndarray | float) -> np.ndarray:
    """HTK mel scale in TensorFlow's form: 1127 * ln(1 + f / 700)."""
    return 1127.0 * np.log1p(np.asarray(hertz, dtype=np.float64) / 700.0)


def mel_weight_matrix(params: YamnetParams = PARAMS) -> np.ndarray:
    """(fft_length // 2 + 1, mel_bands) triangles as TensorFlow's `linear_to_mel_weight_matrix` builds them.

    TF computes the triangles on bins 1.. only ("HTK excludes the spectrogram DC bin") and then pads a zero
    row back in, so the DC row is zero whatever the edges are; the bin frequencies are still those of
    linspace(0, nyquist, bins), i.e. bin k sits at k * sr / fft_length. Triangles are linear in mel, peak 1.
    """
    bins = params.fft_length // 2 + 1
    bin_mel = _hertz_to_mel(np.linspace(0.0, params.sample_rate / 2.0, bins))[1:, None]
    edges = np.linspace(_hertz_to_mel(params.mel_min_hz), _hertz_to_mel(params.mel_max_hz), params.mel_bands + 2)
    lower, center, upper = edges[None, :-2], edges[None, 1:-1], edges[None, 2:]
    rising = (bin_mel - lower) / (center - lower)
    falling = (upper - bin_mel) / (upper - center)
    weights = np.maximum(0.0, np.minimum(rising, falling))
    return np.concatenate([np.zeros((1, params.mel_bands)), weights]).astype(np.float32)


def padded_length(num_samples: int, params: YamnetParams = PARAMS) -> int:
    """Length YAMNet pads a waveform to: at least one patch, then a whole number of patch hops."""
    # The published code casts a float32 product to int32; compute the same way so edge cases agree.
    min_samples = int(np.float32((params.patch_window_seconds + params.stft_window_seconds
                                  - params.stft_hop_seconds) * params.sample_rate))
    hop = int(np.float32(params.patch_hop_seconds * params.sample_rate))
    length = max(num_samples, min_samples)
    return min_samples + hop * math.ceil((length - min_samples) / hop)


class LogMelPatches(nn.Module):
    """Waveform batch (B, samples) at 16 kHz in [-1, 1] -> log-mel patches (B, patches, 96, 64).

    `pad=True` zero-pads the end like YAMNet's frames model, so any clip (even shorter than 0.975 s) gives at
    least one patch and its tail is covered; `pad=False` keeps only complete patches (TF `frame` semantics).
    """

    def __init__(self, params: YamnetParams = PARAMS, pad: bool = True) -> None:
        super().__init__()
        self.params = params
        self.pad = pad
        window = torch.hann_window(params.window_samples, periodic=True, dtype=torch.float64)
        self.register_buffer("window", window.float(), persistent=False)
        self.register_buffer("mel_matrix", torch.from_numpy(mel_weight_matrix(params)), persistent=False)

    def log_mel(self, waveform: torch.Tensor) -> torch.Tensor:
        """(B, samples) -> (B, frames, 64): frames = 1 + (samples - 400) // 160, no centering."""
        p = self.params
        if waveform.dim() != 2:
            raise ValueError(f"Expected a waveform batch (B, samples), got shape {tuple(waveform.shape)}.")
        waveform = waveform.to(self.window.dtype)  # e.g. float64 audio from soundfile
        if self.pad:
            waveform = F.pad(waveform, (0, padded_length(waveform.shape[-1], p) - waveform.shape[-1]))
        frames = waveform.unfold(-1, p.window_samples, p.hop_samples) * self.window
        magnitude = torch.fft.rfft(frames, n=p.fft_length).abs()
        return torch.log(magnitude @ self.mel_matrix + p.log_offset)

    def forward(self, waveform: torch.Tensor) -> torch.Tensor:
        p = self.params
        log_mel = self.log_mel(waveform)
        if log_mel.shape[1] < p.patch_frames:
            raise ValueError("The clip is shorter than one 0.96 s patch; use pad=True or a longer clip.")
        return log_mel.unfold(1, p.patch_frames, p.patch_hop_frames).transpose(-1, -2)


# ----------------------------------------------------------------------------- network


def same_padding(size: int, kernel: int, stride: int) -> tuple[int, int]:
    """TensorFlow 'SAME' padding along one axis: (before, after); the odd extra goes after."""
    out = -(-size // stride)
    total = max((out - 1) * stride + kernel - size, 0)
    return total // 2, total - total // 2


class SameConv2d(nn.Conv2d):
    """Conv2d with TensorFlow 'SAME' padding, computed from the input size (asymmetric when needed)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        top, bottom = same_padding(x.shape[-2], self.kernel_size[0], self.stride[0])
        left, right = same_padding(x.shape[-1], self.kernel_size[1], self.stride[1])
        if top or bottom or left or right:
            x = F.pad(x, (left, right, top, bottom))
        return super().forward(x)


class ShiftOnlyBatchNorm2d(nn.BatchNorm2d):
    """Batch norm without a scale (Keras `scale=False`): stores beta (`bias`), running mean and variance.

    Subclassing BatchNorm2d keeps the studio's freezing logic (frozen norms stay in eval mode) working.
    Keras momentum 0.99 is torch momentum 0.01.
    """

    def __init__(self, channels: int, eps: float = PARAMS.batchnorm_epsilon) -> None:
        super().__init__(channels, eps=eps, momentum=0.01, affine=False)
        self.bias = nn.Parameter(torch.zeros(channels))


class ConvBlock(nn.Sequential):
    """Full 3x3 convolution, norm, ReLU (YAMNet layer 1)."""

    def __init__(self, in_channels: int, out_channels: int, kernel: int, stride: int) -> None:
        super().__init__()
        self.conv = SameConv2d(in_channels, out_channels, kernel, stride, bias=False)
        self.bn = ShiftOnlyBatchNorm2d(out_channels)
        self.relu = nn.ReLU(inplace=True)


class SeparableBlock(nn.Sequential):
    """Depthwise 3x3 conv, norm, ReLU, then pointwise 1x1 conv, norm, ReLU (MobileNetV1 block)."""

    def __init__(self, in_channels: int, out_channels: int, kernel: int, stride: int) -> None:
        super().__init__()
        self.depthwise = SameConv2d(in_channels, in_channels, kernel, stride, groups=in_channels, bias=False)
        self.depthwise_bn = ShiftOnlyBatchNorm2d(in_channels)
        self.depthwise_relu = nn.ReLU(inplace=True)
        self.pointwise = nn.Conv2d(in_channels, out_channels, 1, bias=False)
        self.pointwise_bn = ShiftOnlyBatchNorm2d(out_channels)
        self.pointwise_relu = nn.ReLU(inplace=True)


class YAMNet(nn.Module):
    """Waveform batch (B, samples) at 16 kHz -> per-patch AudioSet logits (B, patches, 521).

    - `patch_embeddings(wave)`: (B, patches, 1024), one embedding per 0.96 s patch every 0.48 s;
    - `embed(wave)`: (B, 1024), the mean over patches (a clip-level feature for transfer learning);
    - `forward(wave)`: logits; `torch.sigmoid` gives the AudioSet scores;
    - `features(patches)`: the network alone on log-mel patches (N, 96, 64) -> (N, 1024).
    """

    def __init__(self, num_classes: int = PARAMS.num_classes, params: YamnetParams = PARAMS,
                 pad: bool = True) -> None:
        super().__init__()
        self.params = params
        self.frontend = LogMelPatches(params, pad=pad)
        layers: list[nn.Module] = []
        in_channels = 1
        for index, (kernel, stride, channels) in enumerate(LAYER_DEFS):
            block = ConvBlock if index == 0 else SeparableBlock
            layers.append(block(in_channels, channels, kernel, stride))
            in_channels = channels
        self.layers = nn.Sequential(*layers)
        self.classifier = nn.Linear(EMBEDDING_SIZE, num_classes)

    def features(self, patches: torch.Tensor) -> torch.Tensor:
        """(N, 96, 64) log-mel patches -> (N, 1024): time is the image height, mel bands its width."""
        return self.layers(patches.unsqueeze(1)).mean(dim=(-2, -1))

    def patch_embeddings(self, waveform: torch.Tensor) -> torch.Tensor:
        patches = self.frontend(waveform)
        batch, count = patches.shape[:2]
        return self.features(patches.flatten(0, 1)).reshape(batch, count, EMBEDDING_SIZE)

    def embed(self, waveform: torch.Tensor) -> torch.Tensor:
        return self.patch_embeddings(waveform).mean(dim=1)

    def forward(self, waveform: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.patch_embeddings(waveform))


def patch_times(num_patches: int, params: YamnetParams = PARAMS) -> list[tuple[float, float]]:
    """(start, end) seconds of waveform each patch sees (96 hops plus the last STFT window: 0.975 s)."""
    span = params.patch_window_seconds + params.stft_window_seconds - params.stft_hop_seconds
    return [(i * params.patch_hop_seconds, i * params.patch_hop_seconds + span) for i in range(num_patches)]


class YamnetEncoder(nn.Module):
    """YAMNet as a studio backbone: waveform windows (B, samples) at 16 kHz -> (B, 1024) clip embeddings.

    Its own front end (the 0.96 s log-mel patches) is inside, so training, evaluation and every export see
    the same spectrogram; the AudioSet classifier is gone (the studio adds its own head). A window gives
    `padded_length` patches; their embeddings are averaged.
    """

    def __init__(self, model: YAMNet) -> None:
        super().__init__()
        self.frontend = model.frontend
        self.layers = model.layers

    def forward(self, waveform: torch.Tensor) -> torch.Tensor:
        patches = self.frontend(waveform)
        batch, count = patches.shape[:2]
        embeddings = self.layers(patches.flatten(0, 1).unsqueeze(1)).mean(dim=(-2, -1))
        return embeddings.reshape(batch, count, EMBEDDING_SIZE).mean(dim=1)
