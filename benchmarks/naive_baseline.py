"""A naive, tutorial-style transfer-learning script: the baseline the studio has to beat on real data.

Deliberately self-contained (torch, torchvision, torchaudio, soundfile, PIL; nothing from tlstudio), so it
measures what someone gets by following the usual tutorials, not a second copy of the studio:

- sound: soundfile -> mono -> 16 kHz (torchaudio) -> log-mel, 64 bands -> standardised per clip ->
  resized to 128x200 -> 3 channels -> frozen ImageNet MobileNetV2 features (computed once) ->
  linear head, Adam lr 1e-3, batch 32, 100 epochs.
- photos: the PyTorch "transfer learning tutorial", feature-extraction variant, with MobileNetV2:
  Resize 256, CenterCrop 224, ImageNet normalisation, frozen backbone, new linear head, SGD lr 0.001
  momentum 0.9, StepLR(7, 0.1), batch 4, 25 epochs. `--cache-features` (default) computes the features
  once; `--no-cache-features` runs the backbone every epoch with the tutorial's RandomResizedCrop and
  flip on train, as the tutorial does (slow on a CPU).

Like the tutorial, it reports the best epoch's validation accuracy (chosen on validation) and the final
epoch's. Deterministic for a given --seed.

    .venv/bin/python benchmarks/naive_baseline.py --train DIR/train --val DIR/val
    .venv/bin/python benchmarks/naive_baseline.py --data FLAT_DIR --split val_files.txt   (relative paths)
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import time
from pathlib import Path

import numpy as np
import soundfile as sf
import torch
import torch.nn.functional as F
import torchaudio
from PIL import Image
from torch import nn
from torchvision import models, transforms

SOUND_EXT = (".wav", ".ogg", ".flac")
PHOTO_EXT = (".jpg", ".jpeg", ".png", ".ppm", ".bmp", ".pgm", ".tif", ".tiff", ".webp", ".gif")
SAMPLE_RATE = 16_000
IMAGENET_MEAN, IMAGENET_STD = [0.485, 0.456, 0.406], [0.229, 0.224, 0.225]


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def list_classes(root: Path, ext: tuple[str, ...]) -> dict[str, list[Path]]:
    """ImageFolder's rule: each sub-folder is a class, files found recursively, sorted."""
    out = {}
    for folder in sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")):
        files = sorted(p for p in folder.rglob("*") if p.suffix.lower() in ext and not p.name.startswith("."))
        if files:
            out[folder.name] = files
    return out


def samples(args: argparse.Namespace, ext: tuple[str, ...]) -> tuple[list[str], list, list]:
    """(class names, train [(path, label)], val [(path, label)]) from train/val folders or a flat folder + split."""
    if args.data:
        root = Path(args.data)
        val_names = {
            line.strip()
            for line in Path(args.split).read_text().splitlines()
            if line.strip() and not line.startswith("#")
        }
        classes = list_classes(root, ext)
        names = sorted(classes)
        train, val = [], []
        for label, name in enumerate(names):
            for path in classes[name]:
                (val if path.relative_to(root).as_posix() in val_names else train).append((path, label))
        return names, train, val
    train_classes, val_classes = list_classes(Path(args.train), ext), list_classes(Path(args.val), ext)
    names = sorted(train_classes)
    index = {name: i for i, name in enumerate(names)}
    train = [(p, index[n]) for n in names for p in train_classes[n]]
    val = [(p, index[n]) for n in names if n in val_classes for p in val_classes[n]]
    return names, train, val


def detect_kind(args: argparse.Namespace) -> str:
    root = Path(args.data or args.train)
    for path in root.rglob("*"):
        if path.suffix.lower() in SOUND_EXT:
            return "sound"
        if path.suffix.lower() in PHOTO_EXT:
            return "photo"
    raise SystemExit(f"no sound or photo files under {root}")


def backbone() -> nn.Module:
    """Frozen ImageNet MobileNetV2 up to the pooled 1280 features."""
    net = models.mobilenet_v2(weights=models.MobileNet_V2_Weights.IMAGENET1K_V1)
    body = nn.Sequential(net.features, nn.AdaptiveAvgPool2d(1), nn.Flatten())
    for p in body.parameters():
        p.requires_grad_(False)
    return body.eval()


_MEL = torchaudio.transforms.MelSpectrogram(sample_rate=SAMPLE_RATE, n_mels=64)


def sound_picture(path: Path) -> torch.Tensor:
    """The usual "spectrogram as an image": 3 x 128 x 200, standardised per clip."""
    wav, rate = sf.read(str(path), dtype="float32", always_2d=True)
    x = torch.from_numpy(wav.mean(axis=1))
    if rate != SAMPLE_RATE:
        x = torchaudio.functional.resample(x, rate, SAMPLE_RATE)
    logmel = torch.log(_MEL(x) + 1e-6)
    logmel = (logmel - logmel.mean()) / (logmel.std() + 1e-6)
    picture = F.interpolate(logmel[None, None], size=(128, 200), mode="bilinear", align_corners=False)[0]
    return picture.expand(3, -1, -1)


PHOTO_EVAL = transforms.Compose(
    [
        transforms.Resize(256),
        transforms.CenterCrop(224),
        transforms.ToTensor(),
        transforms.Normalize(IMAGENET_MEAN, IMAGENET_STD),
    ]
)
PHOTO_TRAIN = transforms.Compose(
    [
        transforms.RandomResizedCrop(224),
        transforms.RandomHorizontalFlip(),
        transforms.ToTensor(),
        transforms.Normalize(IMAGENET_MEAN, IMAGENET_STD),
    ]
)


def photo_picture(path: Path, transform: transforms.Compose = PHOTO_EVAL) -> torch.Tensor:
    with Image.open(path) as img:
        return transform(img.convert("RGB"))


@torch.no_grad()
def features(body: nn.Module, items: list, load, batch: int = 32) -> tuple[torch.Tensor, torch.Tensor]:
    """Backbone features of every file, in order (the expensive part)."""
    feats, labels = [], []
    for start in range(0, len(items), batch):
        chunk = items[start : start + batch]
        feats.append(body(torch.stack([load(path) for path, _ in chunk])))
        labels.extend(label for _, label in chunk)
    return torch.cat(feats), torch.tensor(labels)


def accuracy(head: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    with torch.no_grad():
        return (head(x).argmax(1) == y).float().mean().item()


def train_cached(kind: str, x_tr, y_tr, x_va, y_va, classes: int, epochs: int, seed: int) -> dict:
    """Head on fixed features: Adam 1e-3 x32 for sound; the tutorial's SGD + StepLR, batch 4, for photos."""
    torch.manual_seed(seed)
    head = nn.Linear(x_tr.shape[1], classes)
    if kind == "sound":
        opt, batch, sched = torch.optim.Adam(head.parameters(), lr=1e-3), 32, None
    else:
        opt, batch = torch.optim.SGD(head.parameters(), lr=1e-3, momentum=0.9), 4
        sched = torch.optim.lr_scheduler.StepLR(opt, step_size=7, gamma=0.1)
    gen = torch.Generator().manual_seed(seed)
    history = []
    for _ in range(epochs):
        head.train()
        order = torch.randperm(len(y_tr), generator=gen)
        for start in range(0, len(order), batch):
            idx = order[start : start + batch]
            loss = F.cross_entropy(head(x_tr[idx]), y_tr[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
        if sched:
            sched.step()
        head.eval()
        history.append(accuracy(head, x_va, y_va))
    return {"history": history}


def train_photo_tutorial(body, train, val, classes: int, epochs: int, seed: int) -> dict:
    """The tutorial exactly: augmented train images through the frozen backbone every epoch."""
    torch.manual_seed(seed)
    head = nn.Linear(1280, classes)
    opt = torch.optim.SGD(head.parameters(), lr=1e-3, momentum=0.9)
    sched = torch.optim.lr_scheduler.StepLR(opt, step_size=7, gamma=0.1)
    x_va, y_va = features(body, val, photo_picture)
    gen = torch.Generator().manual_seed(seed)
    history = []
    for _ in range(epochs):
        order = torch.randperm(len(train), generator=gen).tolist()
        for start in range(0, len(order), 4):
            chunk = [train[i] for i in order[start : start + 4]]
            with torch.no_grad():
                x = body(torch.stack([photo_picture(p, PHOTO_TRAIN) for p, _ in chunk]))
            loss = F.cross_entropy(head(x), torch.tensor([label for _, label in chunk]))
            opt.zero_grad()
            loss.backward()
            opt.step()
        sched.step()
        history.append(accuracy(head, x_va, y_va))
    return {"history": history}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Naive tutorial-style transfer learning baseline.")
    parser.add_argument("--train", help="train folder (one sub-folder per class)")
    parser.add_argument("--val", help="validation folder (one sub-folder per class)")
    parser.add_argument("--data", help="flat folder (one sub-folder per class), with --split")
    parser.add_argument("--split", help="text file: the validation files' paths relative to --data, one a line")
    parser.add_argument("--kind", choices=("auto", "sound", "photo"), default="auto")
    parser.add_argument("--epochs", type=int, help="default 100 for sound, 25 for photos")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--cache-features",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="photos: compute features once (default) instead of every epoch with augmentation",
    )
    parser.add_argument("--threads", type=int, default=min(2, os.cpu_count() or 1))
    parser.add_argument("--json", action="store_true", help="print one JSON line with the results")
    args = parser.parse_args(argv)
    if not ((args.train and args.val) or (args.data and args.split)):
        parser.error("give --train and --val, or --data and --split")
    torch.set_num_threads(args.threads)
    seed_everything(args.seed)
    kind = detect_kind(args) if args.kind == "auto" else args.kind
    epochs = args.epochs or (100 if kind == "sound" else 25)
    names, train, val = samples(args, SOUND_EXT if kind == "sound" else PHOTO_EXT)
    if not train or not val:
        raise SystemExit(f"empty side: {len(train)} train, {len(val)} val files")

    start = time.perf_counter()
    body = backbone()
    load = sound_picture if kind == "sound" else photo_picture
    if kind == "photo" and not args.cache_features:
        result = train_photo_tutorial(body, train, val, len(names), epochs, args.seed)
        feature_seconds = None
    else:
        x_tr, y_tr = features(body, train, load)
        x_va, y_va = features(body, val, load)
        feature_seconds = time.perf_counter() - start
        result = train_cached(kind, x_tr, y_tr, x_va, y_va, len(names), epochs, args.seed)
    seconds = time.perf_counter() - start
    history = result["history"]
    best = max(range(len(history)), key=lambda i: history[i])
    out = {
        "kind": kind,
        "classes": len(names),
        "train_files": len(train),
        "val_files": len(val),
        "epochs": epochs,
        "val_accuracy": history[best],
        "best_epoch": best + 1,
        "final_val_accuracy": history[-1],
        "seconds": round(seconds, 2),
        "feature_seconds": None if feature_seconds is None else round(feature_seconds, 2),
        "cache_features": kind == "sound" or args.cache_features,
        "seed": args.seed,
    }
    if args.json:
        print(json.dumps(out))
    else:
        print(f"{kind}: {len(train)} train / {len(val)} val files, {len(names)} classes, {epochs} epochs")
        print(f"best val accuracy {history[best]:.4f} (epoch {best + 1}), final {history[-1]:.4f}; {seconds:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
