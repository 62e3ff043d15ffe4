"""The exit-code contract under hostile input and unlucky machines: each case through the command line,
with the code the README promises and never a traceback. Small generated files, tiny folders."""

from __future__ import annotations

import json
import math
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from tlstudio.cli import main
from tlstudio.core.store import atomic
from tlstudio.core.store.runs import RunDir
from tlstudio.demo import make_image_folder

FAST = ["--backbone", "mobilenet_v3_small", "--pretrained", "none", "--epochs", "1", "--quiet"]


@pytest.fixture(scope="module")
def photos(tmp_path_factory) -> Path:
    return make_image_folder(tmp_path_factory.mktemp("photos") / "p", classes=("a", "b"), per_class=8,
                             size=(40, 32), seed=4)


@pytest.fixture(scope="module")
def trained(photos: Path, tmp_path_factory) -> Path:
    run = tmp_path_factory.mktemp("runs") / "run"
    assert main(["train", str(photos), "--out", str(run), *FAST]) == 0
    return run


def _copy(run: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(run, tmp_path / "copy"))


def _code(argv: list[str], capsys) -> tuple[int, str]:
    code = main(argv)
    out = capsys.readouterr()
    text = out.out + out.err
    assert "Traceback" not in text
    return code, text


@pytest.mark.parametrize(("name", "content"), [
    ("metrics.json", "{not json"),
    ("metrics.json", "[1, 2, 3]"),
    ("dataset.json", '{"root": 5}'),
])
def test_damaged_run_files_are_exit_5(trained: Path, tmp_path: Path, capsys, name: str, content: str) -> None:
    run = _copy(trained, tmp_path)
    (run / name).write_text(content)
    code, text = _code(["evaluate", str(run)], capsys)
    assert code == 5 and name in text


def test_a_wrong_typed_config_is_exit_5_on_resume(trained: Path, tmp_path: Path, capsys) -> None:
    run = _copy(trained, tmp_path)
    (run / "config.json").write_text("[]")
    assert _code(["train", "--resume", str(run)], capsys)[0] == 5


def test_a_full_disk_inside_torch_save_is_exit_5(photos: Path, tmp_path: Path, capsys, monkeypatch) -> None:
    def full(path, obj):
        raise RuntimeError("[enforce fail at inline_container.cc:664] . PytorchStreamWriter failed writing file "
                           "data/0: file write failed")

    monkeypatch.setattr(atomic, "torch_save", full)
    code, text = _code(["train", str(photos), "--out", str(tmp_path / "run"), *FAST], capsys)
    assert code == 5 and "disk is full" in text
    assert not (tmp_path / "run").exists()  # failed before its first epoch: nothing half-made left behind


def test_a_full_disk_at_labels_json_does_not_recommend_resume(photos: Path, tmp_path: Path, capsys,
                                                             monkeypatch) -> None:
    import errno

    real = atomic.write_json

    def full(path, data):
        if Path(path).name == "labels.json":
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(path, data)

    monkeypatch.setattr(atomic, "write_json", full)
    code, text = _code(["train", str(photos), "--out", str(tmp_path / "run"), *FAST], capsys)
    assert code == 5 and "start the run again" in text and "--resume" not in text
    assert not (tmp_path / "run").exists()
    monkeypatch.undo()
    assert _code(["train", str(photos), "--out", str(tmp_path / "run"), *FAST], capsys)[0] == 0  # same --out


def test_exports_to_impossible_places_are_exit_5(trained: Path, tmp_path: Path, capsys) -> None:
    a_file = tmp_path / "a file"
    a_file.write_text("x")
    for out in (a_file, a_file / "below", trained):
        code, text = _code(["export", str(trained), "--format", "checkpoint", "--out", str(out)], capsys)
        assert code == 5, (out, text)
    assert (trained / "model.pt").is_file() and json.loads((trained / "metrics.json").read_text())


def test_predict_csv_to_an_impossible_place_and_bad_top(trained: Path, photos: Path, tmp_path: Path,
                                                       capsys) -> None:
    image = str(next((photos / "a").iterdir()))
    assert _code(["predict", str(trained), image, "--csv", str(tmp_path / "missing" / "x.csv")], capsys)[0] == 5
    assert _code(["predict", str(trained), image, "--top", "-3"], capsys)[0] == 2


def test_a_closed_pipe_is_quiet() -> None:
    process = subprocess.Popen([sys.executable, "-m", "tlstudio", "backbones"], stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE)
    process.stdout.close()  # like `| head -1` that has had its line before the studio writes the rest
    err = process.stderr.read().decode()
    assert process.wait(timeout=120) == 141 and "Traceback" not in err and err == ""


def test_file_names_with_tabs_newlines_and_foreign_bytes_survive(tmp_path: Path, capsys) -> None:
    root = make_image_folder(tmp_path / "d", classes=("a", "b"), per_class=6, size=(40, 32), seed=2)
    originals = sorted((root / "a").iterdir())
    names = [b"caf\xe9.jpg", b"tab\there.jpg", b"new\nline.jpg"]
    for source, name in zip(originals, names, strict=False):
        os.rename(source, os.path.join(os.fsencode(root / "a"), name))
    run = tmp_path / "run"
    code, _ = _code(["train", str(root), "--out", str(run), *FAST, "--val-split", "0.5", "--group-by", "none"],
                    capsys)
    assert code == 0
    dataset = RunDir(run).read_json("dataset.json")
    listed = {os.fsencode(Path(s["path"]).name) for s in dataset["train"] + dataset["val"]}
    assert set(names) <= listed
    rows = RunDir(run).read_table("predictions.tsv")
    assert len(rows) == len(dataset["val"]) and all(os.path.exists(row["path"]) for row in rows)
    assert _code(["evaluate", str(run)], capsys)[0] == 0


def test_evaluate_and_resume_notice_data_that_changed(photos: Path, tmp_path: Path, capsys) -> None:
    data = Path(shutil.copytree(photos, tmp_path / "data"))
    run = tmp_path / "run"
    assert _code(["train", str(data), "--out", str(run), *FAST[:-3], "--epochs", "2", "--quiet"], capsys)[0] == 0
    (run / "metrics.json").unlink()  # as if it stopped after epoch 2 of more
    config = json.loads((run / "config.json").read_text())
    config["epochs"] = 3
    (run / "config.json").write_text(json.dumps(config))
    victim = RunDir(run).read_json("dataset.json")["val"][0]["path"]
    Path(victim).unlink()
    code, text = _code(["train", "--resume", str(run)], capsys)
    assert code == 3 and "changed or vanished" in text
    code, text = _code(["train", "--resume", str(run), "--epochs", "9"], capsys)
    assert code == 2 and "--epochs" in text
    shutil.rmtree(data)
    code, text = _code(["evaluate", str(run)], capsys)
    assert code == 3 and "gone" in text


def test_two_trainings_into_one_folder_exactly_one_wins(photos: Path, tmp_path: Path) -> None:
    out = tmp_path / "shared"
    args = [sys.executable, "-m", "tlstudio", "train", str(photos), "--out", str(out),
            "--backbone", "mobilenet_v3_small", "--pretrained", "none", "--epochs", "2", "--quiet"]
    first = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    second = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    results = [(p.wait(timeout=600), *p.communicate()) for p in (first, second)]
    codes = sorted(code for code, _, _ in results)
    assert codes == [0, 5], results
    loser = next(err for code, _, err in results if code == 5)
    assert "Traceback" not in loser
    metrics = json.loads((out / "metrics.json").read_text())
    history = RunDir(out).read_history()
    assert metrics["epochs"] == len(history) == 2 and metrics["status"] == "completed"
    assert not (out / ".tlstudio.lock").exists()


def test_sigterm_saves_and_exits_143(photos: Path, tmp_path: Path) -> None:
    run = tmp_path / "run"
    process = subprocess.Popen([sys.executable, "-m", "tlstudio", "train", str(photos), "--out", str(run),
                                "--backbone", "mobilenet_v3_small", "--pretrained", "none", "--unfreeze", "1",
                                "--epochs", "30", "--batch-size", "4", "--no-cache"],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 300
    while not (run / "checkpoint.pt").exists():
        assert time.monotonic() < deadline and process.poll() is None
        time.sleep(0.05)
    process.send_signal(signal.SIGTERM)
    out, err = process.communicate(timeout=300)
    assert process.returncode == 143, err
    assert "Traceback" not in err and "--resume" in out
    assert (run / "model.pt").is_file() and not (run / ".tlstudio.lock").exists()


def test_poisoned_sound_files_never_make_a_nan_model(tmp_path: Path, capsys) -> None:
    from tlstudio.demo_audio import make_sound_folder

    data = make_sound_folder(tmp_path / "s", per_class=4, seed=2)
    rate = 16000
    huge = np.full(rate, 1e30, dtype=np.float32)
    late_nan = np.concatenate([0.1 * np.sin(np.arange(rate * 61) / 5), [np.nan]]).astype(np.float32)
    late_sound = np.concatenate([np.zeros(rate * 61), 0.3 * np.sin(np.arange(rate) / 3)]).astype(np.float32)
    sf.write(str(data / "tone" / "huge.wav"), huge, rate, subtype="FLOAT")
    sf.write(str(data / "tone" / "late nan.wav"), late_nan, rate, subtype="FLOAT")
    sf.write(str(data / "noise" / "late sound.wav"), late_sound, rate, subtype="FLOAT")
    run = tmp_path / "run"
    code, _text = _code(["train", str(data), "--out", str(run), *FAST], capsys)
    assert code == 0
    skipped = {Path(s["path"]).name: s["reason"] for s in RunDir(run).read_json("dataset.json")["skipped"]}
    assert set(skipped) == {"huge.wav", "late nan.wav"} and all("corrupt" in r for r in skipped.values())
    state = torch.load(run / "model.pt", weights_only=True)["state_dict"]
    assert all(torch.isfinite(v).all() for v in state.values() if v.is_floating_point())
    assert _code(["train", str(data), "--out", str(tmp_path / "nan"), *FAST, "--lr", "nan"], capsys)[0] == 2


def test_a_loss_that_stops_being_finite_is_exit_8_with_the_good_weights(photos: Path, tmp_path: Path, capsys,
                                                                        monkeypatch) -> None:
    from tlstudio.core.training import steps

    real = steps.train_epoch

    def poisoned(ctx, module, batches, steps_, epoch, *rest):
        if epoch == 2:
            ctx = steps.StepContext(ctx.device, ctx.autocast_dtype, lambda *_: torch.tensor(math.nan),
                                    ctx.control, ctx.emit)
        return real(ctx, module, batches, steps_, epoch, *rest)

    monkeypatch.setattr(steps, "train_epoch", poisoned)
    run = tmp_path / "run"
    code, text = _code(["train", str(photos), "--out", str(run), *FAST[:-3], "--epochs", "3", "--quiet"], capsys)
    assert code == 8 and "finite" in text and "learning rate" in text
    state = torch.load(run / "model.pt", weights_only=True)["state_dict"]
    assert all(torch.isfinite(v).all() for v in state.values() if v.is_floating_point())
    assert json.loads((run / "metrics.json").read_text())["status"] == "diverged"


def test_odd_inputs_the_scan_and_predict_survive(trained: Path, tmp_path: Path, capsys) -> None:
    from PIL import Image, PngImagePlugin

    info = PngImagePlugin.PngInfo()
    info.add_text("history", "x" * 10_000_000, zip=True)  # a 10 MB compressed text chunk
    Image.new("RGB", (40, 32), (200, 10, 10)).save(tmp_path / "chatty.png", pnginfo=info)
    fifo = tmp_path / "pipe.png"
    os.mkfifo(fifo)
    result: dict = {}
    worker = threading.Thread(target=lambda: result.update(
        code=main(["predict", str(trained), str(tmp_path / "chatty.png"), str(fifo)])))
    worker.start()
    worker.join(timeout=120)
    assert not worker.is_alive()  # a named pipe does not hang prediction
    out = capsys.readouterr().out
    assert result["code"] == 0 and "chatty.png: " in out and "not a regular file" in out
    assert "could not be used" not in out.split("chatty.png")[1].split("\n")[0]


def test_a_sound_export_takes_an_empty_batch(tmp_path: Path, capsys) -> None:
    from tlstudio.demo_audio import make_sound_folder

    data = make_sound_folder(tmp_path / "s", per_class=4, seed=6)
    run = tmp_path / "run"
    assert _code(["train", str(data), "--out", str(run), *FAST], capsys)[0] == 0
    assert _code(["export", str(run), "--format", "torchscript", "--out", str(tmp_path / "ts")], capsys)[0] == 0
    model = torch.jit.load(str(tmp_path / "ts" / "model.ts"))
    assert model(torch.zeros(0, 16000)).shape == (0, 3)


def test_a_wide_confusion_matrix_is_summarised(trained: Path, capsys, monkeypatch) -> None:
    from tlstudio.core.inference import evaluation

    classes = [f"species number {i}" for i in range(200)]
    matrix = [[0] * 200 for _ in range(200)]
    matrix[3][7] = 4
    fake = {"run": str(trained), "data": "x", "files": 4, "accuracy": 0.5, "macro_f1": 0.5, "unknown_classes": [],
            "unreadable": [], "trained_val_accuracy": 0.5, "confusion_matrix": matrix, "misclassified": [],
            "per_class": {c: {"precision": 0, "recall": 0, "f1": 0, "support": 1} for c in classes}}
    monkeypatch.setattr(evaluation, "evaluate_run", lambda *a, **k: (fake, None))
    code, text = _code(["evaluate", str(trained)], capsys)
    assert code == 0 and max(len(line) for line in text.splitlines()) < 200
    assert "species number 3 -> species number 7" in text


def test_a_corrupt_mp3_is_named_in_plain_words(tmp_path: Path) -> None:
    from tlstudio.core.media.audio import check_audio

    good = tmp_path / "good.mp3"
    sf.write(str(good), (0.3 * np.sin(np.arange(16000) / 4)).astype(np.float32), 16000, format="MP3")
    broken = tmp_path / "broken.mp3"
    broken.write_bytes(good.read_bytes()[:40] + os.urandom(3000))
    reason = check_audio(broken) or ""
    assert reason.startswith(("not a readable sound file", "corrupt")) and "pipe" not in reason


def test_evaluate_says_which_files_changed_since_training(trained: Path, photos: Path, tmp_path: Path,
                                                         capsys) -> None:
    run = _copy(trained, tmp_path)
    dataset = json.loads((run / "dataset.json").read_text())
    moved = Path(shutil.copytree(photos, tmp_path / "photos"))
    text = json.dumps(dataset).replace(str(photos), str(moved))
    (run / "dataset.json").write_text(text)
    victim = Path(json.loads(text)["val"][0]["path"])
    victim.write_bytes(victim.read_bytes() + b"\0")  # the same name, other content
    code, out = _code(["evaluate", str(run)], capsys)
    assert code == 0 and "1 file(s) changed or vanished since training" in out
