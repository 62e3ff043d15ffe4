"""Peak memory of sound work is bounded by design, not by file length or sample rate.

Measures, each in a fresh process (peak RSS from the kernel), against a reference measured in the same
run: the same command on a 1-second clip. Cases: `predict` on a 10-minute and a 1-hour clip (44.1 kHz
stereo), and `train` on clips at odd sample rates (44,099 Hz and 11,127 Hz, which once built resampling
kernels of 23 GB and 6 GB). Target: every case under 2.5 GB.

    .venv/bin/python benchmarks/bench_sound_memory.py [--skip-hour]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile as sf

LIMIT_GB = 2.5


def peak_rss_gb(argv: list[str], env: dict[str, str]) -> tuple[float, float, int]:
    """(peak resident memory in GB, seconds, exit code) of a command run in its own process."""
    started = time.perf_counter()
    process = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(process.pid, 0)
    process.returncode = os.waitstatus_to_exitcode(status)
    return usage.ru_maxrss / 2**20, time.perf_counter() - started, process.returncode


def tone_file(path: Path, seconds: float, rate: int, channels: int = 2) -> Path:
    """Written in blocks, so making an hour of sound costs no memory here either."""
    with sf.SoundFile(str(path), "w", samplerate=rate, channels=channels, subtype="PCM_16") as handle:
        block = rate * 10
        for start in range(0, int(seconds * rate), block):
            n = min(block, int(seconds * rate) - start)
            t = (start + np.arange(n)) / rate
            wave = 0.3 * np.sin(2 * np.pi * 440 * t) + 0.02 * np.random.default_rng(start).standard_normal(n)
            handle.write(np.repeat(wave[:, None], channels, axis=1).astype(np.float32))
    return path


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--skip-hour", action="store_true", help="leave out the 1-hour clip")
    args = parser.parse_args()
    tlstudio = [sys.executable, "-m", "tlstudio"]
    with tempfile.TemporaryDirectory(prefix="tlstudio-mem-") as tmp:
        root = Path(tmp)
        env = {**os.environ, "TLSTUDIO_HOME": str(root / "home")}
        odd = root / "odd"
        for label, freq in (("low", 300), ("high", 2000)):
            (odd / label).mkdir(parents=True)
            for n, rate in enumerate((44099, 11127, 44099, 11127, 22050, 8000)):
                t = np.arange(int(rate * 1.2)) / rate
                sf.write(str(odd / label / f"{label}_{n}.wav"), (0.3 * np.sin(2 * np.pi * freq * t)).astype(np.float32),
                         rate)
        run = root / "run"
        rows = []
        gb, seconds, code = peak_rss_gb([*tlstudio, "train", str(odd), "--out", str(run), "--epochs", "2",
                                         "--unfreeze", "1", "--augment", "light", "--no-cache", "--quiet",
                                         "--group-by", "none"], env)
        rows.append(("train, clips at 44,099 / 11,127 / 22,050 / 8,000 Hz", gb, seconds, code))
        one = tone_file(root / "one second.wav", 1, 44100)
        reference, ref_seconds, _ = peak_rss_gb([*tlstudio, "predict", str(run), str(one)], env)
        rows.append(("predict, 1 s clip (reference)", reference, ref_seconds, 0))
        lengths = [("10 minutes", 600)] + ([] if args.skip_hour else [("1 hour", 3600)])
        for name, seconds_long in lengths:
            clip = tone_file(root / f"{name}.wav", seconds_long, 44100)
            gb, seconds, code = peak_rss_gb([*tlstudio, "predict", str(run), str(clip)], env)
            rows.append((f"predict, {name} at 44.1 kHz stereo", gb, seconds, code))
    print(f"{'case':<55} {'peak RSS':>9} {'x ref':>6} {'seconds':>8}  ok")
    ok = True
    for name, gb, seconds, code in rows:
        fine = code == 0 and gb < LIMIT_GB
        ok &= fine
        print(f"{name:<55} {gb:>7.2f}GB {gb / reference:>6.2f} {seconds:>8.1f}  {'yes' if fine else 'NO'}")
    print(f"target: every case under {LIMIT_GB} GB, exit code 0")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
