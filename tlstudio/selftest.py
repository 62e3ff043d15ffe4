"""`tlstudio --self-test`: proves an install works, from a checkout or inside an installer's bundle.

Offscreen and offline (network connections are refused while it runs), in a temporary studio home, it trains
on the built-in demo data with the bundled default weights, evaluates, exports ONNX and TorchScript and checks
that both agree with `tlstudio predict`, trains once more with a DataLoader worker process (spawn; in a frozen
app this re-enters the program through freeze_support), checks sound playback support, and opens and closes
the studio window. One line per check with its time; exit 0 when all pass, else 1 with what failed.

Only the public command line (`tlstudio.cli.main`) drives the studio here, so the self-test does not depend
on how the core is organised inside.
"""

from __future__ import annotations

import contextlib
import csv
import importlib.resources
import io
import json
import os
import platform
import shutil
import socket
import sys
import tempfile
import time
import traceback
from collections.abc import Callable, Iterator
from pathlib import Path

from tlstudio import __version__
from tlstudio.core.models.registry import DEFAULT_BACKBONE

TOLERANCE = 1e-4  # probabilities: exports vs `tlstudio predict` (the CSV rounds to 1e-6)
AGREEMENT_FILES = 2  # per class


class CheckFailed(Exception):
    """A check's own verdict, with the command output that explains it."""

    def __init__(self, message: str, output: str = "") -> None:
        super().__init__(message)
        self.output = output


class Skipped(Exception):
    pass


def _cli(*args: str) -> str:
    """Run `tlstudio ARGS` in this process; return its output, raise CheckFailed on a non-zero exit."""
    from tlstudio.cli import main as cli_main

    out = io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(out):
        try:
            code = cli_main(list(args))
        except SystemExit as exc:  # argparse
            code = exc.code if isinstance(exc.code, int) else 2
    if code != 0:
        raise CheckFailed(f"`tlstudio {' '.join(args[:1])}` exited with {code}", out.getvalue())
    return out.getvalue()


@contextlib.contextmanager
def _offline() -> Iterator[None]:
    """Refuse internet connections in this process: the bundle must work with no network."""
    original = socket.socket.connect, socket.socket.connect_ex

    def refuse(self: socket.socket, address: object, *rest: object) -> None:
        if self.family in (socket.AF_INET, socket.AF_INET6):
            raise OSError(f"self-test: no network allowed (tried {address})")
        return original[0](self, address)  # type: ignore[arg-type]

    def refuse_ex(self: socket.socket, address: object) -> int:
        if self.family in (socket.AF_INET, socket.AF_INET6):
            raise OSError(f"self-test: no network allowed (tried {address})")
        return original[1](self, address)  # type: ignore[arg-type]

    socket.socket.connect, socket.socket.connect_ex = refuse, refuse_ex  # type: ignore[method-assign]
    try:
        yield
    finally:
        socket.socket.connect, socket.socket.connect_ex = original  # type: ignore[method-assign]


class SelfTest:
    def __init__(self, home: Path, demo: Path) -> None:
        self.home = home
        self.demo = demo
        self.run = home / "runs" / "demo"
        self.exports = home / "exports"
        self.failed: list[str] = []
        self.passed = 0

    # -- the checks; each returns a one-line detail ------------------------------------------------------

    def weights(self) -> str:
        where = _cli("weights", "where", DEFAULT_BACKBONE).strip()
        if not where.endswith("(present)"):
            raise CheckFailed(f"the {DEFAULT_BACKBONE} weights are not found: {where}",
                              "The installer should carry them; from a checkout run "
                              f"`tlstudio weights fetch {DEFAULT_BACKBONE}`.")
        return where.removesuffix("(present)").strip()

    def train(self) -> str:
        _cli("train", str(self.demo), "--backbone", DEFAULT_BACKBONE, "--epochs", "3", "--seed", "0",
             "--out", str(self.run), "--quiet")
        metrics = json.loads((self.run / "metrics.json").read_text(encoding="utf-8"))
        accuracy = metrics.get("val_accuracy")
        device = metrics.get("device", "?")
        return f"3 epochs on the demo data, {DEFAULT_BACKBONE}, device {device}, val accuracy {accuracy:.3f}"

    def evaluate(self) -> str:
        output = _cli("evaluate", str(self.run), "--json")
        result = json.loads(output[output.index("{"):])["result"]
        accuracy = result["accuracy"]
        if not accuracy > 0.5:  # 3 classes: chance is 0.33; the demo reaches ~0.9 in 3 epochs
            raise CheckFailed(f"accuracy {accuracy:.3f} is too low for the demo data", output)
        return f"accuracy {accuracy:.3f}, macro F1 {result['macro_f1']:.3f} on {result['files']} files"

    def export(self, fmt: str) -> str:
        out = self.exports / fmt
        _cli("export", str(self.run), "--format", fmt, "--out", str(out))
        sidecar = json.loads((out / "model.json").read_text(encoding="utf-8"))
        contract = sidecar["input"]
        expected = {"kind": "image", "shape": ["N", 3, "H", "W"], "range": [0.0, 1.0], "channels": "RGB"}
        wrong = {k: contract.get(k) for k, v in expected.items() if contract.get(k) != v}
        if wrong:
            raise CheckFailed(f"model.json's input contract differs from the documented one: {wrong}")
        model = out / sidecar["file"]
        return f"{model.name} ({model.stat().st_size / 2**20:.1f} MB), classes {', '.join(sidecar['classes'])}"

    def agreement(self) -> str:
        import numpy as np
        from PIL import Image

        files = [path for folder in sorted(p for p in self.demo.iterdir() if p.is_dir())
                 for path in sorted(folder.glob("*.jpg"))[:AGREEMENT_FILES]]
        table = self.home / "predict.csv"
        _cli("predict", str(self.run), *map(str, files), "--top", "3", "--csv", str(table))
        with open(table, newline="", encoding="utf-8") as handle:
            rows = {Path(row["path"]).name: row for row in csv.DictReader(handle)}
        # The input contract of model.json: float (N, 3, H, W), RGB in [0, 1], any size.
        images = [np.asarray(Image.open(f).convert("RGB"), dtype=np.float32).transpose(2, 0, 1)[None] / 255.0
                  for f in files]
        classes = json.loads((self.exports / "onnx" / "model.json").read_text(encoding="utf-8"))["classes"]
        runners = {"torchscript": _torchscript_runner(self.exports / "torchscript" / "model.ts"),
                   "onnx": _onnx_runner(self.exports / "onnx" / "model.onnx")}
        worst = 0.0
        for fmt, (runner, engine) in runners.items():
            for path, image in zip(files, images, strict=True):
                row = rows[path.name]
                if row.get("error"):
                    raise CheckFailed(f"`tlstudio predict` could not use {path.name}: {row['error']}")
                probabilities = runner(image)[0]
                top1 = classes[int(np.argmax(probabilities))]
                if top1 != row["label1"]:
                    raise CheckFailed(f"{fmt} ({engine}) says {top1} for {path.name}, `tlstudio predict` says "
                                      f"{row['label1']}")
                for rank in (1, 2, 3):
                    label = row.get(f"label{rank}")
                    if not label:
                        continue
                    difference = abs(float(probabilities[classes.index(label)]) - float(row[f"probability{rank}"]))
                    worst = max(worst, difference)
                    if difference > TOLERANCE:
                        raise CheckFailed(f"{fmt} ({engine}) gives {label} on {path.name} a probability "
                                          f"{difference:.2e} away from `tlstudio predict` (tolerance {TOLERANCE})")
        engines = ", ".join(f"{fmt} via {engine}" for fmt, (_r, engine) in runners.items())
        return f"{len(files)} demo files: top-1 equal, largest probability difference {worst:.1e} ({engines})"

    def workers(self) -> str:
        out = self.home / "runs" / "workers"
        _cli("train", str(self.demo), "--backbone", DEFAULT_BACKBONE, "--epochs", "1", "--workers", "1",
             "--no-cache", "--device", "cpu", "--seed", "1", "--out", str(out), "--quiet")
        if not (out / "model.pt").is_file():
            raise CheckFailed("the run with a worker process saved no model.pt")
        return "1 epoch with 1 DataLoader worker process (spawn)"

    def multimedia(self) -> str:
        try:
            from PySide6 import QtMultimedia  # noqa: F401
        except ImportError as exc:
            return (f"sound playback is off: QtMultimedia does not load ({exc}); on Linux install libpulse0. "
                    "Everything else works.")
        return "QtMultimedia loads: sound clips can be played on the Data page"

    def window(self) -> str:
        from PySide6.QtCore import QSettings
        from PySide6.QtWidgets import QApplication

        # Settings of this window go to the temporary home, never to the user's real settings.
        QSettings.setDefaultFormat(QSettings.Format.IniFormat)
        QSettings.setPath(QSettings.Format.IniFormat, QSettings.Scope.UserScope, str(self.home / "settings"))
        from tlstudio.gui.app import create_window

        app, window = create_window()
        window.ask_before_closing = lambda: True
        window.show()
        deadline = time.monotonic() + 1.0
        while time.monotonic() < deadline:
            app.processEvents()
            time.sleep(0.02)
        if not window.isVisible():
            raise CheckFailed("the main window did not become visible")
        title, size = window.windowTitle(), window.size()
        window.close()
        app.processEvents()
        if window.isVisible():
            raise CheckFailed("the main window did not close")
        platform_name = QApplication.platformName()
        return f"'{title}' opened at {size.width()}x{size.height()} and closed (Qt platform {platform_name})"

    # -- running ------------------------------------------------------------------------------------------

    def check(self, name: str, function: Callable[[], str], needs: tuple[str, ...] = ()) -> None:
        blocked = [n for n in needs if n in self.failed]
        if blocked:
            self.failed.append(name)
            print(f"  SKIP  {name:<12}        needs {', '.join(blocked)}", flush=True)
            return
        start = time.perf_counter()
        try:
            detail = function()
        except CheckFailed as exc:
            self._fail(name, start, str(exc), exc.output)
            return
        except Exception as exc:  # the self-test reports every failure, then exits 1
            self._fail(name, start, f"{type(exc).__name__}: {exc}", traceback.format_exc())
            return
        self.passed += 1
        print(f"  ok    {name:<12} {time.perf_counter() - start:6.1f} s  {detail}", flush=True)

    def _fail(self, name: str, start: float, message: str, output: str) -> None:
        self.failed.append(name)
        print(f"  FAIL  {name:<12} {time.perf_counter() - start:6.1f} s  {message}", flush=True)
        for line in output.strip().splitlines()[-25:]:
            print(f"          | {line}", flush=True)


def _torchscript_runner(path: Path):
    import torch

    model = torch.jit.load(str(path), map_location="cpu").eval()

    def run(image):
        with torch.no_grad():
            return model(torch.from_numpy(image)).numpy()

    return run, "torch.jit"


def _onnx_runner(path: Path):
    try:
        import onnxruntime
    except ImportError:
        from onnx.reference import ReferenceEvaluator

        evaluator = ReferenceEvaluator(str(path))
        name = evaluator.input_names[0]
        return (lambda image: evaluator.run(None, {name: image})[0]), "onnx reference evaluator"
    options = onnxruntime.SessionOptions()
    options.log_severity_level = 3
    session = onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    return (lambda image: session.run(None, {name: image})[0]), f"onnxruntime {onnxruntime.__version__}"


def main(argv: list[str] | None = None) -> int:
    argv = list(argv or [])
    keep = "--keep" in argv
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    frozen = bool(getattr(sys, "frozen", False))
    home = Path(tempfile.mkdtemp(prefix="tlstudio-selftest-"))
    previous_home = os.environ.get("TLSTUDIO_HOME")
    os.environ["TLSTUDIO_HOME"] = str(home)
    where = "installed bundle" if frozen else "from source"
    print(f"tlstudio {__version__} self-test ({where}, Python {platform.python_version()}, {platform.platform()})",
          flush=True)
    print(f"  temporary studio home: {home}", flush=True)
    started = time.perf_counter()
    try:
        with importlib.resources.as_file(importlib.resources.files("tlstudio.resources") / "demo" / "shapes") as demo:
            test = SelfTest(home, Path(demo))
            with _offline():
                test.check("weights", test.weights)
                test.check("train", test.train, needs=("weights",))
                test.check("evaluate", test.evaluate, needs=("train",))
                test.check("onnx", lambda: test.export("onnx"), needs=("train",))
                test.check("torchscript", lambda: test.export("torchscript"), needs=("train",))
                test.check("agreement", test.agreement, needs=("onnx", "torchscript"))
                test.check("workers", test.workers, needs=("weights",))
                test.check("multimedia", test.multimedia)
                test.check("window", test.window)
    finally:
        if previous_home is None:
            os.environ.pop("TLSTUDIO_HOME", None)
        else:
            os.environ["TLSTUDIO_HOME"] = previous_home
        if keep:
            print(f"  kept {home}", flush=True)
        else:
            shutil.rmtree(home, ignore_errors=True)
    seconds = time.perf_counter() - started
    if test.failed:
        print(f"self-test FAILED ({', '.join(test.failed)}); {test.passed} checks passed, {seconds:.1f} s", flush=True)
        return 1
    print(f"self-test passed: {test.passed} checks in {seconds:.1f} s", flush=True)
    return 0
