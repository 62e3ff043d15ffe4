"""What the model looks at: a heat map over the picture the network sees, or over the spectrogram of a clip.

- CNN backbones on images: Grad-CAM (Selvaraju et al., 2017) at the last convolution.
- Transformers (ViT, Swin): occlusion (Zeiler & Fergus, 2014). Their last layers hold tokens, not a
  feature map, and Grad-CAM on them is noisy; hiding a patch and measuring the drop works for any model.
- Sound: gradient x input on the log-mel spectrogram (the studio's own front end, or YAMNet's patches laid
  back on one time line), so the map is in time and frequency.

Hand-written rather than Captum or pytorch-grad-cam: each method is a few lines over forward hooks, and
those libraries bring matplotlib/OpenCV into the installers for nothing the studio needs.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from tlstudio.core.data.spec import Sample
from tlstudio.core.errors import DataError

TRANSFORMER_FAMILIES = ("vit", "swin")


@dataclass
class Explanation:
    path: str
    target: str  # the class explained
    probability: float
    method: str
    picture: np.ndarray  # (H, W, 3) uint8: what the network sees (the crop, or the spectrogram)
    heat: np.ndarray  # (H, W) float in [0, 1], same size
    regression: bool = False  # then `target` names the value and `probability` holds the predicted value

    def describe(self) -> str:
        """"ants 96.7%", or a regression's "age 41.2"."""
        return f"{self.target} {self.probability:.4g}" if self.regression else f"{self.target} {self.probability:.1%}"


def _scores(model: nn.Module, outputs: torch.Tensor) -> torch.Tensor:
    """What a heat map explains: class probabilities, or a regression's value itself."""
    return outputs if getattr(model, "regression", False) else outputs.softmax(dim=1)


def _normalise(heat: torch.Tensor) -> np.ndarray:
    heat = heat.detach().float().clamp_min(0)
    top = float(heat.max())
    return (heat / top).numpy() if top > 0 else heat.numpy()


def _last_conv(module: nn.Module) -> nn.Module | None:
    convs = [m for m in module.modules() if isinstance(m, nn.Conv2d)]
    return convs[-1] if convs else None


def _cam_layer(model: nn.Module) -> nn.Module | None:
    """The last block of the backbone (its output, after the activation, is the usual Grad-CAM layer), or
    its last convolution when that block is not a module of its own."""
    for block in reversed(model.blocks):
        for prefix in block.prefixes:
            try:
                module = model.backbone.get_submodule(prefix.rstrip("."))
            except AttributeError:
                continue
            if _last_conv(module) is not None:
                return module
    return _last_conv(model.backbone)


def grad_cam(model: nn.Module, x: torch.Tensor, target: int) -> torch.Tensor:
    """(H, W) Grad-CAM of `target` for one input (1, 3, H, W), upsampled to the input size."""
    layer = _cam_layer(model)
    if layer is None:
        raise DataError("This backbone has no convolution to explain with Grad-CAM.")
    kept: dict[str, torch.Tensor] = {}

    def keep(_module, _inputs, output):
        if isinstance(output, torch.Tensor) and output.ndim == 4:
            output.retain_grad()
            kept["maps"] = output

    handle = layer.register_forward_hook(keep)
    try:
        with torch.enable_grad():
            score = model(x.requires_grad_(True))[0, target]
            score.backward()
    finally:
        handle.remove()
    if "maps" not in kept:
        raise DataError("This backbone's last block gives no feature map to explain with Grad-CAM.")
    maps = kept["maps"]
    weights = maps.grad.mean(dim=(2, 3), keepdim=True)
    cam = torch.relu((weights * maps).sum(dim=1, keepdim=True))
    return nn.functional.interpolate(cam, size=x.shape[-2:], mode="bilinear", align_corners=False)[0, 0]


def occlusion(model: nn.Module, x: torch.Tensor, target: int, patch: int = 32, stride: int = 16,
              batch: int = 32) -> torch.Tensor:
    """(H, W): how much `target`'s probability falls when each patch is hidden (set to the mean, 0 after
    normalisation), averaged over the patches that cover a pixel."""
    _, _, h, w = x.shape
    with torch.inference_mode():
        base = _scores(model, model(x))[0, target]
        boxes = [(top, left) for top in range(0, max(h - patch, 0) + 1, stride)
                 for left in range(0, max(w - patch, 0) + 1, stride)]
        drops = []
        for start in range(0, len(boxes), batch):
            chunk = boxes[start:start + batch]
            hidden = x.repeat(len(chunk), 1, 1, 1)
            for i, (top, left) in enumerate(chunk):
                hidden[i, :, top:top + patch, left:left + patch] = 0
            drops.append(base - _scores(model, model(hidden))[:, target])
        drops = torch.cat(drops)
        if getattr(model, "regression", False):  # a value can move either way: any change is reliance
            drops = drops.abs()
    heat = torch.zeros(h, w)
    cover = torch.zeros(h, w)
    for drop, (top, left) in zip(drops.tolist(), boxes, strict=True):
        heat[top:top + patch, left:left + patch] += drop
        cover[top:top + patch, left:left + patch] += 1
    return heat / cover.clamp_min(1)


def _image_picture(x: torch.Tensor, mean, std) -> np.ndarray:
    pixels = x[0].detach() * torch.tensor(std).view(3, 1, 1) + torch.tensor(mean).view(3, 1, 1)
    return (pixels.clamp(0, 1).permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)


def _sound_saliency(model: nn.Module, windows: torch.Tensor, target: int) -> tuple[np.ndarray, torch.Tensor, str]:
    """(spectrogram picture, heat) of the clip's best window for `target`, low frequencies at the bottom."""
    from tlstudio.core.models.transfer_model import chunked

    with torch.inference_mode():  # in slices: a long recording has thousands of windows
        best = int(_scores(model, chunked(model, windows))[:, target].abs().argmax())
    window = windows[best:best + 1].clone()
    frontend = model.frontend if model.frontend is not None else getattr(model.backbone, "frontend", None)
    if frontend is None:
        raise DataError("This sound model has no spectrogram front end to explain.")
    kept: dict[str, torch.Tensor] = {}

    def keep(_module, _inputs, output):
        leaf = output.detach().requires_grad_(True)  # the waveform needs no gradient: start it here
        kept["spectrogram"] = leaf
        return leaf

    handle = frontend.register_forward_hook(keep)
    try:
        with torch.enable_grad():
            model(window)[0, target].backward()
    finally:
        handle.remove()
    spec = kept["spectrogram"]
    relevance = (spec.grad * spec).abs()
    if model.frontend is not None:  # the studio's log-mel picture: (1, 3, mels, frames), already upright
        heat = relevance[0].sum(dim=0)
        picture = spec[0, 0].detach()
    else:  # YAMNet: (1, patches, 96 frames, 64 mels), patches overlapping in time
        patches, frames, mels = spec.shape[1:]
        hop = getattr(getattr(frontend, "params", None), "patch_hop_frames", frames)
        length = (patches - 1) * hop + frames
        heat, values, cover = torch.zeros(length, mels), torch.zeros(length, mels), torch.zeros(length, 1)
        for i in range(patches):
            heat[i * hop:i * hop + frames] += relevance[0, i]
            values[i * hop:i * hop + frames] += spec[0, i].detach()
            cover[i * hop:i * hop + frames] += 1
        params = getattr(frontend, "params", None)
        if params is not None:  # leave out the frames of padding after the window's end
            real = 1 + max(window.shape[-1] - params.window_samples, 0) // params.hop_samples
            length = max(1, min(length, real))
        heat = (heat / cover)[:length].T.flip(0)
        picture = (values / cover)[:length].T.flip(0)
    low, high = float(picture.min()), float(picture.max())
    grey = ((picture - low) / max(high - low, 1e-6)).numpy()
    grey = (np.stack([grey] * 3, axis=-1) * 255).round().astype(np.uint8)
    scale = max(1, 256 // max(grey.shape[0], 1))  # a readable size: YAMNet has 64 mel rows
    grey = np.kron(grey, np.ones((scale, scale, 1), dtype=np.uint8))
    # gradient x input is spiky: smooth it over a few bins and frames, and scale by its 99th percentile, so
    # regions rather than single pixels show
    heat = nn.functional.avg_pool2d(heat[None, None], kernel_size=5, stride=1, padding=2, count_include_pad=False)
    heat = (heat / torch.quantile(heat.flatten(), 0.99).clamp_min(1e-12)).clamp(max=1)
    heat = nn.functional.interpolate(heat, size=grey.shape[:2], mode="bilinear")[0, 0]
    return grey, heat, f"window {best + 1} of {len(windows)}" if len(windows) > 1 else ""


class Explainer:
    """A run's model loaded once, to explain many files (the Try page's cards)."""

    def __init__(self, run) -> None:
        from tlstudio.core.models.registry import get_entry
        from tlstudio.core.models.saved import load_model

        self.model, self.classes, self.pipeline = load_model(run)
        self.model.eval()
        self.family = get_entry(run.load_torch("model.pt")["backbone"]).family

    def explain(self, path: str | Path, target: str | None = None) -> Explanation:
        """The heat map of one file for `target` (default: the predicted class)."""
        from tlstudio.core.data.loaders import make_loader
        from tlstudio.core.inference.calibration import sharpen
        from tlstudio.core.models.transfer_model import chunked

        model, classes, pipeline = self.model, self.classes, self.pipeline
        loader = make_loader(pipeline.eval_dataset([Sample(str(path), 0)]), 1, 0, torch.device("cpu"))
        batch = next(iter(loader))
        if batch["bad"]:
            raise DataError(f"{path} could not be used: {batch['bad'][0][1]}.")
        inputs = batch["images"]
        with torch.inference_mode():
            from tlstudio.core.data.audio_clips import clip_probabilities

            # the probability users are shown everywhere else: pooled, then calibrated (or the value)
            outputs = chunked(model, inputs)
            probabilities = (outputs.float().mean(dim=0) if model.regression else
                             sharpen(clip_probabilities(outputs, batch.get("groups")), model.temperature)[0])
        if model.regression:
            index = 0
        elif target is None:
            index = int(probabilities.argmax())
        elif target in classes:
            index = classes.index(target)
        else:
            raise DataError(f"'{target}' is not a class of this model.", f"Choose one of: {', '.join(classes)}.")
        if pipeline.modality == "audio":
            picture, heat, where = _sound_saliency(model, inputs, index)
            method = "gradient x input on the spectrogram" + (f" ({where})" if where else "")
        else:
            if self.family in TRANSFORMER_FAMILIES:
                heat, method = occlusion(model, inputs, index), "occlusion (32-pixel patches)"
            else:
                heat, method = grad_cam(model, inputs, index), "Grad-CAM at the last block"
            pre = pipeline.preprocess
            picture = _image_picture(inputs, pre.mean, pre.std)
        return Explanation(str(path), classes[index], float(probabilities[index]), method, picture,
                           _normalise(heat), bool(model.regression))


def explain(run, path: str | Path, target: str | None = None) -> Explanation:
    """The heat map of one file for `target` (default: the predicted class) with the run's model."""
    return Explainer(run).explain(path, target)


# ----------------------------------------------------------------------------- pictures

_STOPS = np.array([[0, 0, 4], [87, 16, 110], [188, 55, 84], [249, 142, 9], [252, 255, 164]], dtype=np.float32)


def colour(heat: np.ndarray) -> np.ndarray:
    """(H, W) in [0, 1] -> (H, W, 3) uint8 on an inferno-like scale (dark = ignored, yellow = decisive)."""
    position = np.clip(heat, 0, 1) * (len(_STOPS) - 1)
    low = np.floor(position).astype(int).clip(0, len(_STOPS) - 2)
    fraction = (position - low)[..., None]
    return (_STOPS[low] * (1 - fraction) + _STOPS[low + 1] * fraction).round().astype(np.uint8)


def overlay(explanation: Explanation, alpha: float = 0.55) -> np.ndarray:
    """The picture with the heat map laid over it; weak heat stays transparent."""
    heat = explanation.heat[..., None]
    weight = alpha * np.clip(heat * 1.5, 0, 1)
    mixed = explanation.picture * (1 - weight) + colour(explanation.heat) * weight
    return mixed.round().astype(np.uint8)


def save_png(explanation: Explanation, out: str | Path) -> Path:
    """The picture and the overlay side by side, with a caption; written atomically."""
    from PIL import Image, ImageDraw

    from tlstudio.core.store.atomic import write_bytes

    picture, mixed = explanation.picture, overlay(explanation)
    h, w = picture.shape[:2]
    canvas = Image.new("RGB", (2 * w + 12, h + 34), "white")
    canvas.paste(Image.fromarray(picture), (0, 34))
    canvas.paste(Image.fromarray(mixed), (w + 12, 34))
    draw = ImageDraw.Draw(canvas)
    draw.text((4, 4), f"{Path(explanation.path).name}: {explanation.describe()}",
              fill="black")
    draw.text((4, 18), explanation.method, fill=(90, 90, 90))
    import io

    encoded = io.BytesIO()
    canvas.save(encoded, format="PNG")
    return write_bytes(Path(out), encoded.getvalue())
