"""Does transfer learning help here? Frozen vs fine-tuned vs from scratch, same data, same epochs.

Generated photo-like data (3 shapes, 60 per class, 480x360 JPEG, 20% validation), MobileNetV2:
  frozen      ImageNet weights, only the new head trains (feature extraction, fast path)
  fine-tuned  ImageNet weights, head first for 2 epochs, then the top 5 blocks (two-phase, light augmentation)
  scratch     random initialisation, everything trains (same epochs, same augmentation)
Run: .venv/bin/python benchmarks/compare_transfer.py
"""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path

EPOCHS = 8
SETTINGS = {
    "frozen": dict(pretrained="imagenet", unfreeze="0"),
    "fine-tuned": dict(pretrained="imagenet", unfreeze="5", schedule="two-phase", warmup_epochs=2, augment="light"),
    "scratch": dict(pretrained="none", unfreeze="all", augment="light", lr=3e-3, backbone_lr_factor=1.0),
}


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        tmp_path = Path(tmp)
        os.environ["TLSTUDIO_HOME"] = str(tmp_path / "home")
        from tlstudio.core.data.scan import scan
        from tlstudio.core.store.runs import RunDir
        from tlstudio.core.training import engine
        from tlstudio.core.training.config import TrainConfig
        from tlstudio.demo import make_image_folder

        data = make_image_folder(tmp_path / "data", classes=("circles", "squares", "triangles"), per_class=60,
                                 size=(480, 360), seed=77)
        spec = scan(data, check_file="auto")
        print(f"{len(spec.train)} train / {len(spec.val)} val images, {EPOCHS} epochs each, mobilenet_v2, CPU")
        for name, overrides in SETTINGS.items():
            config = TrainConfig(data=str(data), epochs=EPOCHS, cache_features=False, **overrides)
            start = time.perf_counter()
            metrics = engine.train(spec, config, RunDir.create(tmp_path / name, config.backbone), lambda _e: None)
            print(f"{name:<11} val accuracy {metrics['val_accuracy']:.3f}  val loss {metrics['val_loss']:.3f}  "
                  f"{time.perf_counter() - start:6.1f}s")


if __name__ == "__main__":
    main()
