"""Feature-extraction fast path on data shaped like the PyTorch transfer-learning tutorial's.

The tutorial's hymenoptera set has 2 classes, 244 training and 153 validation photos (~500x375 JPEG);
no network here, so the same shape of data is generated (tlstudio.demo). Prints, measured in this run:
  - accuracy and wall time of `--unfreeze 0 --epochs 10` (cold embedding cache),
  - the wall time of 20 epochs as a ratio to 1 epoch (both cold): the fast path's promise,
  - a warm-cache rerun as a ratio to the cold one.
Run: .venv/bin/python benchmarks/bench_fast_path.py [--classes stars crosses]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path


def timed_run(data: Path, out: Path, epochs: int, cache: bool) -> tuple[float, dict]:
    from tlstudio.core.data.scan import scan
    from tlstudio.core.media.images import check_image
    from tlstudio.core.store.runs import RunDir
    from tlstudio.core.training import engine
    from tlstudio.core.training.config import TrainConfig

    start = time.perf_counter()
    config = TrainConfig(data=str(data), backbone="mobilenet_v2", unfreeze="0", epochs=epochs, cache_features=cache)
    spec = scan(data, check_file=check_image)
    metrics = engine.train(spec, config, RunDir.create(out, config.backbone), lambda _e: None)
    return time.perf_counter() - start, metrics


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--classes", nargs=2, default=["stars", "crosses"])
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        tmp_path = Path(tmp)
        os.environ["TLSTUDIO_HOME"] = str(tmp_path / "home")
        from tlstudio.demo import make_image_folder

        data = make_image_folder(tmp_path / "data", classes=tuple(args.classes), per_class=122, val_per_class=77,
                                 size=(500, 375), seed=123, layout="split")
        import torch

        print(f"data: 2 classes ({', '.join(args.classes)}), 244 train / 154 val, 500x375 JPEG; "
              f"torch {torch.__version__}, {torch.get_num_threads()} threads, {os.cpu_count()} cores")
        t10, m10 = timed_run(data, tmp_path / "r10", 10, cache=False)
        print(f"10 epochs, cold: {t10:.1f}s wall, val accuracy {m10['val_accuracy']:.3f}")
        t1, m1 = timed_run(data, tmp_path / "r1", 1, cache=False)
        t20, m20 = timed_run(data, tmp_path / "r20", 20, cache=False)
        print(f"1 epoch, cold: {t1:.1f}s (acc {m1['val_accuracy']:.3f}); 20 epochs, cold: {t20:.1f}s "
              f"(acc {m20['val_accuracy']:.3f})")
        print(f"ratio 20 epochs / 1 epoch: {t20 / t1:.2f}x  (target <= 1.5x)")
        timed_run(data, tmp_path / "warm-a", 10, cache=True)  # fills the cache
        warm, _ = timed_run(data, tmp_path / "warm-b", 10, cache=True)
        print(f"10 epochs, warm embedding cache: {warm:.2f}s = {warm / t10:.3f}x the cold run")


if __name__ == "__main__":
    main()
