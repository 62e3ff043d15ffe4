"""The catalogue of image backbones: how to build each, its ordered blocks, head and preprocessing.

Blocks are listed from input to output as parameter-name prefixes of the torchvision model, so
"unfreeze the top K blocks" means the same thing for a ResNet stage, a MobileNet feature block and a
ViT encoder layer. Facts shown to users (parameters, ImageNet accuracy, GFLOPs, input size) come from
the torchvision weights' own metadata, so nothing is built or downloaded to list the catalogue.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from tlstudio.core.media.preprocess import Preprocess
from tlstudio.core.models.registry import register
from tlstudio.core.models.types import Block, Layout

if TYPE_CHECKING:
    from torch import nn


@dataclass(frozen=True)
class BackboneEntry:
    name: str
    family: str
    weights_enum: str
    weights_tag: str
    summary: str
    modality: str = "image"  # image backbones also serve sound, through the log-mel front end
    pretraining: str = "ImageNet (1.3 million photos, 1,000 classes)"

    def weights(self) -> Any:
        import torchvision.models as models

        return getattr(models, self.weights_enum)[self.weights_tag]

    @property
    def weights_url(self) -> str:
        return self.weights().url

    @property
    def weights_filename(self) -> str:
        return self.weights_url.rsplit("/", 1)[-1]

    def meta(self) -> dict[str, Any]:
        weights = self.weights()
        meta = weights.meta
        transforms = weights.transforms()
        return {
            "params": int(meta["num_params"]),
            "imagenet_top1": float(meta["_metrics"]["ImageNet-1K"]["acc@1"]),
            "gflops": float(meta["_ops"]),
            "file_mb": float(meta["_file_size"]),
            "input_size": int(transforms.crop_size[0]),
        }

    def build_backbone(self, state: dict | None = None) -> tuple[nn.Module, Layout]:
        """The torchvision network with pretrained `state` (or random), its classifier removed."""
        from tlstudio.core.models.transfer_model import strip_classifier
        from tlstudio.core.models.weights import load_backbone_state

        net = build_torchvision(self)
        layout = layout_of(self, net)
        if state is not None:
            load_backbone_state(self, net, state, layout.classifier)
        strip_classifier(net, layout.classifier)
        return net, layout

    def preprocess(self) -> Preprocess:
        transforms = self.weights().transforms()
        return Preprocess(
            resize=int(transforms.resize_size[0]),
            crop=int(transforms.crop_size[0]),
            mean=tuple(float(v) for v in transforms.mean),
            std=tuple(float(v) for v in transforms.std),
            interpolation=transforms.interpolation.value,
        )


def _children(model: nn.Module, path: str) -> list[str]:
    module = model.get_submodule(path)
    return [name for name, _ in module.named_children()]


def _linear(model: nn.Module, path: str) -> int:
    return int(model.get_submodule(path).in_features)


def _resnet(model: nn.Module) -> Layout:
    blocks = [Block("stem", ("conv1.", "bn1."))] + [Block(f"layer{i}", (f"layer{i}.",)) for i in range(1, 5)]
    return Layout(blocks, "fc", _linear(model, "fc"))


def _feature_stages(model: nn.Module, extra: list[Block], classifier: str) -> Layout:
    blocks = [Block(f"features.{name}", (f"features.{name}.",)) for name in _children(model, "features")]
    return Layout(blocks + extra, classifier, _linear(model, classifier))


def _mobilenet_v2(model: nn.Module) -> Layout:
    return _feature_stages(model, [], "classifier.1")


def _mobilenet_v3(model: nn.Module) -> Layout:
    return _feature_stages(model, [Block("pre-logits", ("classifier.0.",))], "classifier.3")


def _efficientnet(model: nn.Module) -> Layout:
    return _feature_stages(model, [], "classifier.1")


def _convnext(model: nn.Module) -> Layout:
    return _feature_stages(model, [Block("final norm", ("classifier.0.",))], "classifier.2")


def _swin(model: nn.Module) -> Layout:
    return _feature_stages(model, [Block("final norm", ("norm.",))], "head")


def _regnet(model: nn.Module) -> Layout:
    blocks = [Block("stem", ("stem.",))] + [
        Block(name, (f"trunk_output.{name}.",)) for name in _children(model, "trunk_output")
    ]
    return Layout(blocks, "fc", _linear(model, "fc"))


def _densenet(model: nn.Module) -> Layout:
    blocks = [Block("stem", ("features.conv0.", "features.norm0."))]
    for i in range(1, 5):
        tail = f"features.transition{i}." if i < 4 else "features.norm5."
        blocks.append(Block(f"denseblock{i}", (f"features.denseblock{i}.", tail)))
    return Layout(blocks, "classifier", _linear(model, "classifier"))


def _vgg(model: nn.Module) -> Layout:
    import torch.nn as nn

    blocks: list[Block] = []
    current: list[str] = []
    for name, module in model.features.named_children():
        if isinstance(module, nn.Conv2d):
            current.append(f"features.{name}.")
        if isinstance(module, nn.MaxPool2d) and current:
            blocks.append(Block(f"conv{len(blocks) + 1}", tuple(current)))
            current = []
    blocks.append(Block("fc6-fc7", ("classifier.0.", "classifier.3.")))
    return Layout(blocks, "classifier.6", _linear(model, "classifier.6"))


def _vit(model: nn.Module) -> Layout:
    blocks = [Block("patch embedding", ("conv_proj.", "class_token", "encoder.pos_embedding"))]
    blocks += [Block(name, (f"encoder.layers.{name}.",)) for name in _children(model, "encoder.layers")]
    blocks.append(Block("final norm", ("encoder.ln.",)))
    return Layout(blocks, "heads.head", _linear(model, "heads.head"))


_LAYOUTS: dict[str, Callable[[nn.Module], Layout]] = {
    "resnet": _resnet,
    "mobilenet_v2": _mobilenet_v2,
    "mobilenet_v3": _mobilenet_v3,
    "efficientnet": _efficientnet,
    "convnext": _convnext,
    "regnet": _regnet,
    "densenet": _densenet,
    "vgg": _vgg,
    "vit": _vit,
    "swin": _swin,
}

CATALOGUE: dict[str, BackboneEntry] = {
    entry.name: entry
    for entry in [
        # mobilenet_v2 uses the V1 weights on purpose: their file can also be had offline (weights fetch).
        BackboneEntry("mobilenet_v2", "mobilenet_v2", "MobileNet_V2_Weights", "IMAGENET1K_V1",
                      "Small and fast; the default, and the one that works offline out of the box."),
        BackboneEntry("mobilenet_v3_small", "mobilenet_v3", "MobileNet_V3_Small_Weights", "IMAGENET1K_V1",
                      "Tiniest and fastest; for phones and slow CPUs."),
        BackboneEntry("mobilenet_v3_large", "mobilenet_v3", "MobileNet_V3_Large_Weights", "IMAGENET1K_V2",
                      "Fast with good accuracy."),
        BackboneEntry("resnet18", "resnet", "ResNet18_Weights", "IMAGENET1K_V1",
                      "The classic small ResNet; a robust baseline."),
        BackboneEntry("resnet50", "resnet", "ResNet50_Weights", "IMAGENET1K_V2",
                      "The classic workhorse; strong features, moderate cost."),
        BackboneEntry("efficientnet_b0", "efficientnet", "EfficientNet_B0_Weights", "IMAGENET1K_V1",
                      "Very good accuracy for its size."),
        BackboneEntry("efficientnet_b2", "efficientnet", "EfficientNet_B2_Weights", "IMAGENET1K_V1",
                      "Higher accuracy, 288-pixel input."),
        BackboneEntry("efficientnet_v2_s", "efficientnet", "EfficientNet_V2_S_Weights", "IMAGENET1K_V1",
                      "High accuracy, 384-pixel input; slow on a CPU."),
        BackboneEntry("convnext_tiny", "convnext", "ConvNeXt_Tiny_Weights", "IMAGENET1K_V1",
                      "A modern convolutional network; strong transfer."),
        BackboneEntry("regnet_y_800mf", "regnet", "RegNet_Y_800MF_Weights", "IMAGENET1K_V2",
                      "Efficient, well-tuned design."),
        BackboneEntry("densenet121", "densenet", "DenseNet121_Weights", "IMAGENET1K_V1",
                      "Compact features; popular for medical images."),
        BackboneEntry("vgg16", "vgg", "VGG16_Weights", "IMAGENET1K_V1",
                      "Old and very large; simple features."),
        BackboneEntry("vit_b_16", "vit", "ViT_B_16_Weights", "IMAGENET1K_V1",
                      "Vision Transformer; strong with enough data, slow on a CPU."),
        BackboneEntry("swin_t", "swin", "Swin_T_Weights", "IMAGENET1K_V1",
                      "Swin Transformer; strong transfer, moderate cost."),
    ]
}

register(*CATALOGUE.values())


def build_torchvision(entry: BackboneEntry) -> nn.Module:
    """The bare torchvision architecture with random weights; weights are loaded by `weights.py`."""
    from torchvision.models import get_model

    return get_model(entry.name, weights=None)


def layout_of(entry: BackboneEntry, model: nn.Module) -> Layout:
    return _LAYOUTS[entry.family](model)
