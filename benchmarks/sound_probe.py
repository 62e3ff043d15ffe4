"""Why real recordings did badly: frozen-backbone probes of sound front ends on FSDD (and ESC-10).

Each variant embeds every clip once with a frozen pretrained backbone, then trains the studio's fast-path
head (linear, AdamW lr 3e-3, wd 1e-4, batch 32, warm-up + cosine, 10 epochs) on three splits of the same
embeddings: a random stratified 20%, the `auto` speaker split of the flat folder (george + theo held out),
and leave-one-speaker-out for every speaker (mean). Exploration only; `bench_sound_real.py` measures the
studio itself. Run: .venv/bin/python benchmarks/sound_probe.py [variant ...]
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parent))
from sound_sets import fsdd_flat

torch.set_num_threads(2)


def load_all(root: Path, sample_rate: int = 16000):
    from tlstudio.core.media.audio import load_mono

    files = sorted(p for p in root.rglob("*") if p.is_file())
    waves = [load_mono(p, sample_rate) for p in files]
    return files, waves


def fit(wave: torch.Tensor, length: int, where: str = "centre") -> torch.Tensor:
    n = wave.shape[-1]
    if n >= length:
        start = (n - length) // 2
        return wave[start:start + length]
    pad = length - n
    left = pad // 2 if where == "centre" else 0
    return F.pad(wave, (left, pad - left))


def mel_images(waves: torch.Tensor, n_mels=128, n_fft=1024, hop=160, f_max=None, norm="peak", size=None,
               sample_rate=16000, top_db=80.0):
    import torchaudio

    mel = torchaudio.transforms.MelSpectrogram(sample_rate=sample_rate, n_fft=n_fft, hop_length=hop,
                                               n_mels=n_mels, f_max=f_max, power=2.0)
    db = 10 * torch.log10(mel(waves).clamp_min(1e-10))
    if norm == "peak":
        image = ((db - db.amax(dim=(-2, -1), keepdim=True)).clamp_min(-top_db) + top_db) / top_db
        image = image.flip(-2).unsqueeze(1)
        mean = torch.tensor((0.485, 0.456, 0.406)).view(1, 3, 1, 1)
        std = torch.tensor((0.229, 0.224, 0.225)).view(1, 3, 1, 1)
        image = (image.expand(-1, 3, -1, -1) - mean) / std
    else:  # per-clip standardised (the naive script)
        db = (db - db.mean(dim=(-2, -1), keepdim=True)) / db.std(dim=(-2, -1), keepdim=True).clamp_min(1e-5)
        image = db.flip(-2).unsqueeze(1).expand(-1, 3, -1, -1)
    if size is not None:
        image = F.interpolate(image, size=size, mode="bilinear", align_corners=False)
    return image


_NETS: dict = {}


def mobilenet():
    if "mnv2" not in _NETS:
        from tlstudio.core.models.registry import get_entry
        from tlstudio.core.models.weights import pretrained_state

        entry = get_entry("mobilenet_v2")
        net, _ = entry.build_backbone(pretrained_state(entry, "imagenet"))
        _NETS["mnv2"] = net.eval().to(memory_format=torch.channels_last)
    return _NETS["mnv2"]


def yamnet():
    if "yamnet" not in _NETS:
        from tlstudio.core.models.registry import get_entry
        from tlstudio.core.models.weights import pretrained_state

        entry = get_entry("yamnet")
        net, _ = entry.build_backbone(pretrained_state(entry, "imagenet"))
        _NETS["yamnet"] = net.eval()
    return _NETS["yamnet"]


@torch.no_grad()
def embed(waves: list[torch.Tensor], window: float, frontend, batch: int = 64, where: str = "centre"):
    length = round(16000 * window)
    out = []
    for start in range(0, len(waves), batch):
        x = torch.stack([fit(w, length, where) for w in waves[start:start + batch]])
        out.append(frontend(x))
    return torch.cat(out)


def train_head(x: torch.Tensor, y: torch.Tensor, tr: np.ndarray, va: np.ndarray, classes: int, epochs=10,
               lr=3e-3, batch=32, seed=0, standardise=False) -> float:
    from tlstudio.core.training.batching import warmup_cosine

    torch.manual_seed(seed)
    xt, yt, xv, yv = x[tr], y[tr], x[va], y[va]
    if standardise:
        mu, sd = xt.mean(0), xt.std(0).clamp_min(1e-6)
        xt, xv = (xt - mu) / sd, (xv - mu) / sd
    head = torch.nn.Linear(x.shape[1], classes)
    opt = torch.optim.AdamW(head.parameters(), lr=lr, weight_decay=1e-4)
    steps = epochs * -(-len(tr) // batch)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, warmup_cosine(steps))
    g = torch.Generator().manual_seed(seed)
    for _ in range(epochs):
        order = torch.randperm(len(tr), generator=g)
        for s in range(0, len(tr), batch):
            i = order[s:s + batch]
            loss = F.cross_entropy(head(xt[i]), yt[i])
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
    with torch.no_grad():
        return float((head(xv).argmax(1) == yv).float().mean())


def fsdd_splits(files: list[Path]):
    speakers = np.array([f.name.split("_")[1] for f in files])
    labels = np.array([int(f.name.split("_")[0]) for f in files])
    rng = np.random.default_rng(0)
    val = np.zeros(len(files), bool)
    for c in range(10):
        idx = np.flatnonzero(labels == c)
        val[rng.choice(idx, len(idx) // 5, replace=False)] = True
    splits = {"random": (np.flatnonzero(~val), np.flatnonzero(val))}
    auto = np.isin(speakers, ["george", "theo"])
    splits["auto(george,theo)"] = (np.flatnonzero(~auto), np.flatnonzero(auto))
    for s in sorted(set(speakers)):
        splits[f"loso-{s}"] = (np.flatnonzero(speakers != s), np.flatnonzero(speakers == s))
    return labels, splits


def variants():
    def mn(**kw):
        return lambda x: mobilenet()(mel_images(x, **kw).contiguous(memory_format=torch.channels_last))

    return {
        "studio-1.0s (128 mel, peak, 128x101)": (1.0, mn()),
        "window 0.8s": (0.8, mn()),
        "fmax 4k": (1.0, mn(f_max=4000)),
        "224x224": (1.0, mn(size=(224, 224))),
        "0.8s fmax4k 224": (0.8, mn(f_max=4000, size=(224, 224))),
        "0.8s 64mel fmax4k 224": (0.8, mn(f_max=4000, n_mels=64, size=(224, 224))),
        "naive fe (64 mel std 128x200) 1.0s": (1.0, mn(n_mels=64, norm="std", size=(128, 200), n_fft=2048, hop=512)),
        "yamnet 1.0s": (1.0, lambda x: yamnet()(x)),
        "yamnet 0.975s": (0.975, lambda x: yamnet()(x)),
    }


def main(names: list[str]) -> None:
    t = time.perf_counter()
    files, waves = load_all(fsdd_flat())
    labels, splits = fsdd_splits(files)
    y = torch.from_numpy(labels)
    print(f"loaded {len(files)} clips in {time.perf_counter() - t:.0f}s")
    for name, (window, frontend) in variants().items():
        if names and not any(n in name for n in names):
            continue
        t = time.perf_counter()
        x = embed(waves, window, frontend).float()
        seconds = time.perf_counter() - t
        accs = {k: train_head(x, y, tr, va, 10) for k, (tr, va) in splits.items()}
        loso = np.mean([v for k, v in accs.items() if k.startswith("loso")])
        print(f"{name:40s} random {accs['random']:.3f}  auto {accs['auto(george,theo)']:.3f}  loso-mean {loso:.3f}  "
              f"min {min(v for k, v in accs.items() if k.startswith('loso')):.3f}  embed {seconds:.0f}s", flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
