"""The studio on real recordings, beside a naive tutorial-style script on the same split.

Sets (benchmarks/sound_sets.py lays them out in ~/.cache/tlstudio-bench from repository snapshots):
FSDD random split, FSDD with one speaker held out (train/ + val/ folders), FSDD flat with `--group-by auto`
(speakers never straddle), ESC-10 fold 5 held out. The studio runs exactly as `tlstudio train` would
(`engine.train` on `scan`), with the defaults unless flags are given; the naive script is: log-mel 64
bands, per-clip standardised, resized to 128x200, frozen MobileNetV2, linear head, Adam, 100 epochs.

Run: .venv/bin/python benchmarks/bench_sound_real.py CASE [KEY=VALUE ...]   (CASE: see CASES; naive-CASE
for the naive script). One training at a time; prints accuracy and wall seconds.
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
import sound_sets

CASES = {
    "fsdd-random": (lambda: sound_sets.fsdd_flat(), {"group_by": "none", "epochs": 10}),
    "fsdd-speaker": (lambda: sound_sets.fsdd_heldout("theo"), {"epochs": 15}),
    "fsdd-flat": (lambda: sound_sets.fsdd_flat(), {"epochs": 15}),
    "esc10-fold5": (lambda: sound_sets.esc10_folds(), {"epochs": 10}),
    # a small set of short clips (40 per digit, every speaker) and a small set of long ones (instruments)
    "fsdd-small": (lambda: _subset(sound_sets.fsdd_flat(), 40), {"group_by": "none", "epochs": 10}),
    "instruments": (lambda: _bench_set("instruments"), {"epochs": 10}),
}


def _subset(root: Path, per_class: int) -> Path:
    """Every class's first `per_class` files (every 7th name, so all speakers appear), linked, not copied."""
    out = root.parent / f"{root.name}-{per_class}"
    for folder in sorted(p for p in root.iterdir() if p.is_dir()):
        (out / folder.name).mkdir(parents=True, exist_ok=True)
        for source in sorted(folder.iterdir())[::7][:per_class]:
            link = out / folder.name / source.name
            if not link.exists():
                link.symlink_to(source)
    return out


def _bench_set(name: str) -> Path:
    import data as bench_data

    return bench_data.prepare(bench_data.SETS[name], quiet=True)


def _value(text: str):
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text


def studio(case: str, overrides: dict) -> tuple[float, float, dict]:
    from tlstudio.core.data.scan import scan
    from tlstudio.core.store.runs import RunDir
    from tlstudio.core.training import engine
    from tlstudio.core.training.config import TrainConfig, with_data_defaults

    make, settings = CASES[case]
    data = make()
    config = TrainConfig(data=str(data), **{**settings, **overrides})
    start = time.perf_counter()
    spec = scan(data, val_split=config.val_split, seed=config.seed, group_by=config.group_by, check_file="auto")
    # what `tlstudio train` does after its scan: the measured defaults for whatever was not given
    config = with_data_defaults(config, spec.modality, set(overrides), spec.clip_seconds)
    print(f"  {config.backbone}, unfreeze {config.unfreeze}, typical clip {spec.clip_seconds:.2f} s", flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        def show(event) -> None:
            if type(event).__name__ == "EpochEnd":
                print(f"  epoch {event.epoch}: train {event.train_score:.3f} val {event.val_score:.3f} "
                      f"({event.seconds:.0f}s)", flush=True)

        metrics = engine.train(spec, config, RunDir.create(Path(tmp) / "run", config.backbone), show)
    return metrics["val_accuracy"], time.perf_counter() - start, spec.grouping


def naive(case: str) -> tuple[float, float]:
    """The tutorial script, on the split the studio's scan makes for the case."""
    import torch.nn.functional as F
    import torchaudio

    from tlstudio.core.data.scan import scan
    from tlstudio.core.media.audio import load_mono
    from tlstudio.core.models.registry import get_entry
    from tlstudio.core.models.weights import pretrained_state

    make, settings = CASES[case]
    data = make()
    start = time.perf_counter()
    spec = scan(data, val_split=0.2, seed=0, group_by=settings.get("group_by", "auto"), check_file="auto")
    entry = get_entry("mobilenet_v2")
    net, _ = entry.build_backbone(pretrained_state(entry, "imagenet"))
    net.eval()
    mel = torchaudio.transforms.MelSpectrogram(sample_rate=22050, n_fft=2048, hop_length=512, n_mels=64)

    @torch.no_grad()
    def features(samples):
        rows = []
        for s in samples:
            wave = load_mono(s.path, 22050)  # librosa.load's default rate
            db = 10 * torch.log10(mel(wave).clamp_min(1e-10))
            db = (db - db.mean()) / db.std().clamp_min(1e-5)
            image = F.interpolate(db[None, None], size=(128, 200), mode="bilinear").expand(-1, 3, -1, -1)
            rows.append(net(image)[0])
        return torch.stack(rows)

    xt, xv = features(spec.train), features(spec.val)
    yt = torch.tensor([s.label for s in spec.train])
    yv = torch.tensor([s.label for s in spec.val])
    torch.manual_seed(0)
    head = torch.nn.Linear(xt.shape[1], len(spec.classes))
    opt = torch.optim.Adam(head.parameters(), lr=1e-3)
    for _ in range(100):
        for i in torch.randperm(len(yt)).split(32):
            loss = F.cross_entropy(head(xt[i]), yt[i])
            opt.zero_grad()
            loss.backward()
            opt.step()
    with torch.no_grad():
        accuracy = float((head(xv).argmax(1) == yv).float().mean())
    return accuracy, time.perf_counter() - start


def main() -> None:
    torch.set_num_threads(int(os.environ.get("BENCH_THREADS", "2")))
    case, *pairs = sys.argv[1:]
    if case.startswith("naive-"):
        accuracy, seconds = naive(case.removeprefix("naive-"))
        print(f"RESULT naive {case.removeprefix('naive-')}: {accuracy:.4f} in {seconds:.0f}s")
        return
    overrides = {k: _value(v) for k, v in (p.split("=", 1) for p in pairs)}
    accuracy, seconds, grouping = studio(case, overrides)
    print(f"RESULT studio {case} {overrides or 'defaults'}: {accuracy:.4f} in {seconds:.0f}s "
          f"(split: {grouping.get('rule')})")
    np.set_printoptions(precision=3)


if __name__ == "__main__":
    main()
