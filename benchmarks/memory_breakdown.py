"""Where a fine-tune's memory goes: each stage's peak RSS in a fresh process (one training step of
MobileNetV2 on a batch of 32 tensors, all blocks unfrozen, AdamW), and what --checkpointing and
--accumulate take off it. CPU-resident numbers (ru_maxrss); on CUDA the same parts sit on the GPU.

    .venv/bin/python benchmarks/memory_breakdown.py [--backbone mobilenet_v2] [--batch 32]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys

STEP = """
import resource, json, torch
def rss(): return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
from tlstudio.core.models import checkpointing, freezing
from tlstudio.core.models.registry import get_entry
from tlstudio.core.models.transfer_model import build_model
from tlstudio.core.models.weights import pretrained_state
out = {{"imports": rss()}}
entry = get_entry({backbone!r})
model = build_model(entry, 10, "linear", pretrained_state(entry, "imagenet")).to(memory_format=torch.channels_last)
freezing.apply(model, len(model.blocks))
if {checkpoint}:
    checkpointing.enable(model.backbone, model.blocks)
out["model"] = rss()
optimizer = torch.optim.AdamW(model.parameters(), 1e-4)
crop = entry.preprocess().crop
inputs = torch.randn({batch}, 3, crop, crop).contiguous(memory_format=torch.channels_last)
labels = torch.randint(0, 10, ({batch},))
out["batch"] = rss()
model.train()
for _ in range(2):
    optimizer.zero_grad(set_to_none=True)
    for x, y in zip(inputs.chunk({pieces}), labels.chunk({pieces})):
        (torch.nn.functional.cross_entropy(model(x), y) * len(y) / len(labels)).backward()
    optimizer.step()
out["step"] = rss()
print(json.dumps(out))
"""


def measure(backbone: str, batch: int, checkpoint: bool, pieces: int) -> dict:
    code = STEP.format(backbone=backbone, batch=batch, checkpoint=checkpoint, pieces=pieces)
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backbone", default="mobilenet_v2")
    parser.add_argument("--batch", type=int, default=32)
    args = parser.parse_args()
    plain = measure(args.backbone, args.batch, False, 1)
    print(f"{args.backbone}, batch {args.batch}, all blocks training (peak RSS, MB):")
    print(f"  Python + torch + the studio imported   {plain['imports']:7.0f}")
    print(f"  + the model                            {plain['model'] - plain['imports']:+7.0f}")
    print(f"  + one batch of tensors                 {plain['batch'] - plain['model']:+7.0f}")
    print(f"  + training steps (activations kept for the backward pass, gradients, AdamW state) "
          f"{plain['step'] - plain['batch']:+7.0f}  -> {plain['step']:.0f}")
    for label, checkpoint, pieces in (("--checkpointing", True, 1), ("--accumulate 4", False, 4),
                                      ("--checkpointing --accumulate 4", True, 4)):
        found = measure(args.backbone, args.batch, checkpoint, pieces)
        print(f"  {label:<32} training steps {found['step'] - found['batch']:+7.0f}  -> {found['step']:.0f} "
              f"({found['step'] / plain['step']:.2f} of the peak)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
