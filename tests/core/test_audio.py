"""Sound: decoding any format and rate, skipping silent and broken files, windows, and training end to end."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from tests.helpers import tree_digest
from tlstudio.core.data.scan import scan
from tlstudio.core.errors import ConfigError, WeightsError
from tlstudio.core.inference.predict import Predictor
from tlstudio.core.media.audio import AudioSettings, check_audio, fit_window, load_mono, sliding_windows
from tlstudio.core.store.runs import RunDir
from tlstudio.core.training import engine
from tlstudio.core.training import events as ev
from tlstudio.core.training.config import TrainConfig
from tlstudio.demo_audio import make_sound_folder, make_speech_folder

SMALL = dict(backbone="mobilenet_v3_small", pretrained="none", batch_size=8, cache_features=False)


@pytest.fixture(scope="module")
def sounds(tmp_path_factory) -> Path:
    return make_sound_folder(tmp_path_factory.mktemp("sounds"), per_class=8, seed=3)


@pytest.mark.parametrize("fmt", ["WAV", "FLAC", "OGG", "MP3"])
def test_every_format_decodes_to_mono_at_the_model_rate(tmp_path: Path, fmt: str) -> None:
    rate = 44100
    t = np.arange(rate) / rate
    stereo = np.stack([np.sin(2 * math.pi * 440 * t), 0.5 * np.sin(2 * math.pi * 660 * t)], axis=1) * 0.5
    path = tmp_path / f"clip.{fmt.lower()}"
    sf.write(str(path), stereo.astype(np.float32), rate, format=fmt)
    assert check_audio(path) is None
    wave = load_mono(path, 16000)
    assert wave.ndim == 1 and abs(wave.shape[0] - 16000) <= 1200  # mp3 adds encoder padding
    assert 0.1 < float(wave.abs().max()) <= 1.0


def test_silent_empty_and_broken_files_are_named(tmp_path: Path) -> None:
    sf.write(str(tmp_path / "silence.wav"), np.zeros(16000, dtype=np.float32), 16000)
    (tmp_path / "empty.wav").write_bytes(b"")
    (tmp_path / "text.wav").write_text("not sound")
    sf.write(str(tmp_path / "whisper.wav"), np.full(16000, 1e-5, dtype=np.float32), 16000)
    assert "silent" in check_audio(tmp_path / "silence.wav")
    assert "silent" in check_audio(tmp_path / "whisper.wav")
    assert "empty" in check_audio(tmp_path / "empty.wav")
    assert "not a readable sound file" in check_audio(tmp_path / "text.wav")


def test_windows_cut_pad_and_slide() -> None:
    settings = AudioSettings(window_seconds=1.0, hop_seconds=0.5)
    short, long = torch.ones(8000), torch.arange(16000 * 3, dtype=torch.float32)
    assert fit_window(short, settings.window).shape == (16000,)
    assert fit_window(long, settings.window)[0] == 16000  # the centre second
    windows = sliding_windows(long, settings.window, settings.hop)
    assert windows.shape == (5, 16000) and windows[-1][-1] == long[-1]  # every half second, the last at the end
    assert len({tuple(w[:3].tolist()) for w in windows}) == 5  # no window twice
    odd = torch.arange(16000 * 3 + 4000, dtype=torch.float32)  # 3.25 s: the tail is padded, not repeated
    windows = sliding_windows(odd, settings.window, settings.hop)
    assert windows.shape == (6, 16000) and windows[-1][-1] == 0 and odd[-1] in windows[-1]
    assert len({tuple(w[:3].tolist()) for w in windows}) == 6
    assert sliding_windows(short, settings.window, settings.hop).shape == (1, 16000)


def test_a_sound_folder_trains_by_itself_and_predicts_long_clips(sounds: Path, tmp_path: Path) -> None:
    import shutil

    sounds = Path(shutil.copytree(sounds, tmp_path / "data"))
    sf.write(str(sounds / "tone" / "silent.wav"), np.zeros(8000, dtype=np.float32), 16000)
    before = tree_digest(sounds)
    spec = scan(sounds, val_split=0.25, check_file="auto")
    assert spec.modality == "audio" and spec.classes == ["chirp", "noise", "tone"]
    assert [Path(s.path).name for s in spec.skipped] == ["silent.wav"]
    events: list = []
    config = TrainConfig(data=str(sounds), epochs=15, cache_features=False)  # real MobileNetV2 features
    metrics = engine.train(spec, config, RunDir.create(tmp_path / "run", config.backbone), events.append)
    assert metrics["status"] == "completed" and metrics["fast_path"]
    labels = json.loads((tmp_path / "run" / "labels.json").read_text())
    assert labels["modality"] == "audio" and labels["frontend"] == "logmel" and labels["audio"]["sample_rate"] == 16000
    started = next(e for e in events if isinstance(e, ev.RunStarted))
    assert started.modality == "audio"
    long_clip = tmp_path / "long.flac"  # 4 s of a steady 700 Hz tone: 7 windows, one answer
    sf.write(str(long_clip), 0.3 * np.sin(2 * math.pi * 700 * np.arange(16000 * 4) / 16000).astype(np.float32),
             16000)
    predictor = Predictor(RunDir.open(tmp_path / "run"))
    (result,) = predictor.predict([long_clip])
    assert not result.error and result.top[0][0] == "tone", result.top
    assert tree_digest(sounds) == before


def test_fine_tuning_sound_with_augmentation_and_spec_augment(sounds: Path, tmp_path: Path) -> None:
    config = TrainConfig(data=str(sounds), epochs=1, unfreeze="2", augment="strong", **SMALL)
    spec = scan(sounds, check_file="auto")
    metrics = engine.train(spec, config, RunDir.create(tmp_path / "run", config.backbone), lambda _e: None)
    assert metrics["status"] == "completed" and not metrics["fast_path"]
    assert json.loads((tmp_path / "run" / "config.json").read_text())["resolved"]["augment"] == "strong"
    from tlstudio.core.media.audio_frontend import LogMelImage

    frontend = LogMelImage(AudioSettings(), spec_augment=True)
    wave = torch.sin(torch.arange(16000) * 0.2).unsqueeze(0) * 0.5
    torch.manual_seed(3)
    masked = frontend.train()(wave)
    plain = frontend.eval()(wave)
    assert masked.shape == plain.shape and not torch.equal(masked, plain)  # training masks bands and frames
    assert torch.equal(plain, frontend.eval()(wave))  # evaluation never does


def test_wav2vec2_freezing_counts_transformer_layers(sounds: Path, tmp_path: Path) -> None:
    spec = scan(sounds, check_file="auto")
    spec.train, spec.val = spec.train[:6], spec.val[:3]
    config = TrainConfig(data=str(sounds), backbone="wav2vec2_base", pretrained="none", epochs=1, unfreeze="2",
                         batch_size=3, augment="none", cache_features=False)
    events: list = []
    metrics = engine.train(spec, config, RunDir.create(tmp_path / "run", config.backbone), events.append)
    ready = next(e for e in events if isinstance(e, ev.ModelReady))
    assert ready.trainable_blocks == ["transformer layer 11", "transformer layer 12"]
    assert len(ready.frozen_blocks) == 12  # CNN encoder, projection, 10 layers
    assert metrics["status"] == "completed"
    assert json.loads((tmp_path / "run" / "labels.json").read_text())["frontend"] == "raw"


def test_audio_encoders_offline_say_what_to_do(sounds: Path, tmp_path: Path, monkeypatch) -> None:
    from tlstudio.core.models import weights

    monkeypatch.setattr(weights, "checkpoints_dir", lambda: tmp_path / "no-weights")
    monkeypatch.setattr(weights, "download", lambda entry, progress=None: (_ for _ in ()).throw(
        WeightsError(f"Could not download the {entry.name} weights (no network).", weights.offline_hint(entry))))
    config = TrainConfig(data=str(sounds), backbone="hubert_base", epochs=1)
    with pytest.raises(WeightsError) as info:
        engine.train(scan(sounds), config, RunDir.create(tmp_path / "run", config.backbone), lambda _e: None)
    assert "hubert_base" in info.value.message and "tlstudio weights import hubert_base" in info.value.hint


def test_an_audio_encoder_refuses_an_image_folder(shapes_dir: Path, tmp_path: Path) -> None:
    config = TrainConfig(data=str(shapes_dir), backbone="wav2vec2_base", pretrained="none", epochs=1)
    with pytest.raises(ConfigError, match="cannot read images"):
        engine.train(scan(shapes_dir), config, RunDir.create(tmp_path / "run", config.backbone), lambda _e: None)


@pytest.mark.slow
def test_spoken_words_by_unheard_voices_with_the_defaults(tmp_path: Path) -> None:
    """Speech synthesised now (espeak-ng): real MobileNetV2 features on log-mels, speaker-disjoint split."""
    data, _heard, unheard = make_speech_folder(tmp_path / "speech", words=("yes", "no", "stop", "go"),
                                               n_speakers=12, repeats=2, seed=5, held_out_speakers=4)
    config = TrainConfig(data=str(data), cache_features=False)
    spec = scan(data, check_file="auto")
    assert spec.split_source == "folders" and len(spec.val) == 4 * 4 * 2
    assert not {Path(s.path).name.split("_")[0] for s in spec.train} & set(unheard)
    metrics = engine.train(spec, config, RunDir.create(tmp_path / "run", config.backbone), lambda _e: None)
    assert metrics["val_accuracy"] >= 0.8, metrics["val_accuracy"]  # 32 clips; chance is 0.25
