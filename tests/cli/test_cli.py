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
