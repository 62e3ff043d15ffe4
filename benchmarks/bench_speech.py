"""Spoken words with the studio's defaults: a random split, and speakers never heard in training.

Generates (espeak-ng) 10 words x 60 voices x 5 takes = 3000 clips, then trains with the defaults
(log-mel + MobileNetV2, feature extraction) exactly as `tlstudio train FOLDER` would:
  A. one folder per word, random 80/20 split;
  B. train/ = 48 voices, val/ = 12 other voices (speaker-disjoint).
Prints accuracy and CPU wall time of each. Run: .venv/bin/python benchmarks/bench_speech.py
"""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path


def train_defaults(data: Path, out: Path) -> tuple[float, dict]:
    from tlstudio.core.data.scan import scan
    from tlstudio.core.store.runs import RunDir
    from tlstudio.core.training import engine
    from tlstudio.core.training.config import TrainConfig

    start = time.perf_counter()
    config = TrainConfig(data=str(data))
    spec = scan(data, val_split=config.val_split, seed=config.seed, check_file="auto")
    metrics = engine.train(spec, config, RunDir.create(out, config.backbone), lambda _e: None)
    return time.perf_counter() - start, metrics


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        tmp_path = Path(tmp)
        os.environ["TLSTUDIO_HOME"] = str(tmp_path / "home")
        from tlstudio.demo_audio import make_speech_folder

        tick = time.perf_counter()
        flat, _, _ = make_speech_folder(tmp_path / "random", n_speakers=60, repeats=5, seed=1)
        split, _heard, unheard = make_speech_folder(tmp_path / "speakers", n_speakers=48, repeats=5, seed=1,
                                                   held_out_speakers=12)
        print(f"generated 2 x 3000 clips in {time.perf_counter() - tick:.0f}s; unheard voices: {', '.join(unheard)}")
        seconds, metrics = train_defaults(flat, tmp_path / "run-a")
        print(f"A. random split: val accuracy {metrics['val_accuracy']:.4f} on {metrics['sizes']['val']} clips, "
              f"{seconds:.0f}s wall (scan + embedding + {metrics['epochs']} epochs) on {metrics['device']}")
        seconds, metrics = train_defaults(split, tmp_path / "run-b")
        print(f"B. unheard speakers: val accuracy {metrics['val_accuracy']:.4f} on {metrics['sizes']['val']} clips "
              f"from {len(unheard)} voices never heard in training, {seconds:.0f}s wall")
        worst = sorted(metrics["per_class"].items(), key=lambda kv: kv[1]["f1"])[:3]
        print("   weakest words: " + ", ".join(f"{k} (F1 {v['f1']:.2f})" for k, v in worst))


if __name__ == "__main__":
    main()
