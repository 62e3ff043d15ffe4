"""The command line as a script would use it: output, files and exit codes."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tlstudio.cli import main


def test_train_prints_progress_and_writes_the_run(shapes_dir: Path, tmp_path: Path, capsys) -> None:
    out = tmp_path / "run"
    code = main(["train", str(shapes_dir), "--backbone", "mobilenet_v3_small", "--pretrained", "none",
                 "--epochs", "2", "--out", str(out)])
    printed = capsys.readouterr().out
    assert code == 0
    assert "Trainable parameters:" in printed and "frozen" in printed
    assert "epoch   2/2" in printed and "Validation accuracy" in printed
    assert json.loads((out / "metrics.json").read_text())["epochs"] == 2


def test_backbones_lists_the_catalogue(capsys) -> None:
    assert main(["backbones"]) == 0
    printed = capsys.readouterr().out
    assert "mobilenet_v2 *" in printed and "vit_b_16" in printed and "ImageNet top-1" in printed


@pytest.mark.parametrize(
    "args,code,message",
    [
        (["train", "/no/such/folder"], 3, "does not exist"),
        (["train", "{data}", "--backbone", "resnet9000"], 2, "Unknown backbone"),
        (["train", "{data}", "--unfreeze", "99", "--pretrained", "none"], 2, "--unfreeze must be"),
        (["train", "{data}", "--epochs", "0"], 2, "at least one epoch"),
        (["train", "{data}", "--weights", "/no/such.pth", "--backbone", "mobilenet_v3_small"], 4, "does not exist"),
    ],
)
def test_user_mistakes_get_one_clear_sentence_and_an_exit_code(args, code, message, shapes_dir: Path,
                                                              tmp_path: Path, capsys) -> None:
    args = [a.replace("{data}", str(shapes_dir)) for a in args] + ["--out", str(tmp_path / "r")]
    assert main(args) == code
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


def test_one_class_folder_exits_3_with_a_hint(tmp_path: Path, capsys) -> None:
    from tlstudio.demo import make_image_folder

    data = make_image_folder(tmp_path / "d", classes=("cats",), per_class=3, size=(32, 32))
    assert main(["train", str(data)]) == 3
    err = capsys.readouterr().err
    assert "at least two classes" in err and "hint:" in err


def test_the_installed_command_runs(tmp_path: Path) -> None:
    exe = Path(sys.executable).with_name("tlstudio")
    result = subprocess.run([str(exe), "--version"], capture_output=True, text=True)
    assert result.returncode == 0 and result.stdout.startswith("tlstudio ")


def test_run_folder_problems_exit_5(shapes_dir: Path, tmp_path: Path, capsys) -> None:
    a_file = tmp_path / "file.txt"
    a_file.write_text("x")
    assert main(["train", str(shapes_dir), "--out", str(a_file), "--pretrained", "none"]) == 5
    assert main(["train", "--resume", str(tmp_path)]) == 5
    err = capsys.readouterr().err
    assert "is a file, not a folder" in err and "not a studio run folder" in err


def test_a_weights_file_that_would_run_code_exits_4(shapes_dir: Path, tmp_path: Path, capsys) -> None:
    import pickle

    class Evil:
        def __reduce__(self):
            return (print, ("pwned",))

    evil = tmp_path / "evil.pth"
    evil.write_bytes(pickle.dumps({"w": Evil()}))
    code = main(["train", str(shapes_dir), "--weights", str(evil), "--out", str(tmp_path / "r")])
    captured = capsys.readouterr()
    assert code == 4 and "could run code" in captured.err and "pwned" not in captured.out


def test_an_internal_error_is_one_line_plus_a_crash_report(shapes_dir: Path, tmp_path: Path, capsys,
                                                          monkeypatch) -> None:
    from tlstudio.core.training import engine

    def broken(*_args, **_kwargs):
        raise ZeroDivisionError("a bug")

    monkeypatch.setattr(engine, "train", broken)
    assert main(["train", str(shapes_dir), "--out", str(tmp_path / "r"), "--pretrained", "none"]) == 1
    err = capsys.readouterr().err
    assert "internal error" in err and "Traceback" not in err
    report = Path(err.split("details are in ")[1].split(";")[0])
    assert "ZeroDivisionError" in report.read_text()


def test_evaluate_predict_and_export_from_the_command_line(shapes_dir: Path, tmp_path: Path, capsys) -> None:
    import csv
    import shutil

    run = tmp_path / "run"
    assert main(["train", str(shapes_dir), "--backbone", "mobilenet_v3_small", "--pretrained", "none",
                 "--epochs", "1", "--out", str(run), "--quiet"]) == 0
    capsys.readouterr()
    assert main(["evaluate", str(run), "--json"]) == 0
    result = json.loads(capsys.readouterr().out)["result"]
    assert result["files"] == len(json.loads((run / "dataset.json").read_text())["val"]) > 0
    assert len(result["confusion_matrix"]) == 3
    drift = tmp_path / "new"
    shutil.copytree(shapes_dir, drift)
    shutil.copytree(shapes_dir / "circles", drift / "hexagons")  # a class the model never saw
    assert main(["evaluate", str(run), str(drift), "--tta"]) == 0
    printed = capsys.readouterr().out
    assert "at training, on its validation split" in printed and "With test-time augmentation" in printed
    assert "does not know were left out: hexagons" in printed
    out_csv = tmp_path / "predictions.csv"
    assert main(["predict", str(run), str(shapes_dir / "squares"), "--csv", str(out_csv)]) == 0
    with open(out_csv, newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 24 and rows[0]["label1"] in ("circles", "squares", "triangles")
    assert main(["export", str(run), "--format", "torchscript", "--out", str(tmp_path / "export")]) == 0
    assert (tmp_path / "export" / "model.ts").is_file() and (tmp_path / "export" / "predict.py").is_file()


def test_a_sound_folder_trains_yamnet_fine_tuned_by_default(tmp_path: Path, capsys) -> None:
    from tlstudio.demo_audio import make_sound_folder

    data = make_sound_folder(tmp_path / "sounds", per_class=4, seed=3)
    out = tmp_path / "run"
    assert main(["train", str(data), "--epochs", "1", "--out", str(out), "--quiet"]) == 0
    printed = capsys.readouterr().out
    config = json.loads((out / "config.json").read_text())
    assert config["backbone"] == "yamnet" and config["unfreeze"] == "all"
    assert "Sound: yamnet" in printed
    assert main(["train", str(data), "--epochs", "1", "--out", str(tmp_path / "r2"), "--quiet",
                 "--backbone", "mobilenet_v3_small", "--pretrained", "none"]) == 0
    config = json.loads((tmp_path / "r2" / "config.json").read_text())
    assert config["backbone"] == "mobilenet_v3_small" and config["unfreeze"] == "0"


def test_predictions_stream_out_in_parts_the_same_as_in_one_pass(shapes_dir: Path, tmp_path: Path,
                                                                 monkeypatch, capsys) -> None:
    import csv
    import shutil

    from tlstudio.core.inference import predict
    from tlstudio.core.store.runs import RunDir

    run = tmp_path / "run"
    assert main(["train", str(shapes_dir), "--backbone", "mobilenet_v3_small", "--pretrained", "none",
                 "--epochs", "1", "--out", str(run), "--quiet"]) == 0
    folder = tmp_path / "new"
    shutil.copytree(shapes_dir / "squares", folder)
    (folder / "broken.jpg").write_bytes(b"not a picture")
    whole = predict.Predictor(RunDir.open(run)).predict(predict.expand([folder]))
    monkeypatch.setattr(predict, "STREAM_FILES", 5)  # 25 files: five parts
    reports: list[tuple[int, int]] = []
    parts = list(predict.Predictor(RunDir.open(run)).predict_stream(predict.expand([folder]),
                                                                   progress=lambda *a: reports.append(a)))
    assert [p.path for p in parts] == [p.path for p in whole] and len(parts) == 25
    pairs = list(zip(parts, whole, strict=True))
    assert all(a.error == b.error and [c for c, _ in a.top] == [c for c, _ in b.top] for a, b in pairs)
    assert all(abs(x - y) < 1e-5 for a, b in pairs for (_, x), (_, y) in zip(a.top, b.top, strict=True))
    assert reports[-1] == (25, 25) and [d for d, _ in reports] == sorted(d for d, _ in reports)
    out_csv = tmp_path / "out" / "predictions.csv"
    out_csv.parent.mkdir()
    capsys.readouterr()
    assert main(["predict", str(run), str(folder), "--csv", str(out_csv)]) == 0
    assert "Wrote 25 predictions" in capsys.readouterr().out
    with open(out_csv, newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert [r["path"] for r in rows] == [p.path for p in whole]
    assert next(r for r in rows if r["error"])["path"].endswith("broken.jpg")
    assert sorted(p.name for p in out_csv.parent.iterdir()) == ["predictions.csv"]  # no temporary file left
