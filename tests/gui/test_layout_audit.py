"""The layout audit (issue 23): every page of the window, in every state a user meets, walked widget by widget
(tests/gui/audit.py): no clipped text or header, no text below a 3:1 contrast, no overlapping widgets, no
sideways scrollbar from one long line. Each state's pages are saved as PNGs to look at
($TLSTUDIO_AUDIT_DIR, default build/layout-audit/).

States: empty; 2, 10 and 50 classes; sound; regression; dark mode; the window's minimum size. A state with
data opens a project with a finished run (trained here by the core engine, random weights, one epoch), so
Evaluate, Try & export and Compare show real results, and Try has predictions on the list.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from PySide6.QtCore import QMimeData, QPointF, QSize, Qt, QUrl
from PySide6.QtGui import QDropEvent

from tests.gui.audit import audit

pytestmark = pytest.mark.gui

ROOT = Path(__file__).resolve().parents[2]
PAGES = ("data", "model", "train", "evaluate", "try", "compare")
LONG_NAMES = ("great_crested_flycatcher", "black-capped chickadee", "ruby_throated_hummingbird", "wren",
              "northern_mockingbird", "eastern bluebird", "yellow_rumped_warbler", "jay", "tufted titmouse",
              "white_breasted_nuthatch")


def artefacts() -> Path:
    folder = Path(os.environ.get("TLSTUDIO_AUDIT_DIR", ROOT / "build" / "layout-audit"))
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def _folder(kind: str, root: Path) -> Path:
    from tlstudio.demo import make_image_folder

    if kind == "2":
        return make_image_folder(root / "two", classes=("cats", "dogs"), per_class=10, size=(48, 40), seed=3)
    if kind == "10":
        return make_image_folder(root / "ten", classes=LONG_NAMES, per_class=6, size=(48, 40), seed=4)
    if kind == "50":
        names = tuple(f"{LONG_NAMES[i % 10]}_{i:02d}" for i in range(50))
        return make_image_folder(root / "fifty", classes=names, per_class=4, size=(40, 32), seed=5)
    if kind == "sound":
        from tlstudio.demo_audio import make_sound_folder

        return make_sound_folder(root / "sounds", per_class=6, seed=7, seconds=0.6)
    if kind == "regression":
        from tests.core.test_regression import brightness_folder

        return brightness_folder(root / "bright", files=40)
    raise ValueError(kind)


def _project(kind: str, root: Path) -> Path:
    """A folder of `kind`, a one-epoch run on it, and a project that lists it as the active model."""
    from tlstudio.core.data.scan import scan
    from tlstudio.core.store.project import Project
    from tlstudio.core.store.runs import RunDir
    from tlstudio.core.training import engine
    from tlstudio.core.training.config import TrainConfig

    folder = _folder(kind, root)
    config = TrainConfig(data=str(folder), backbone="mobilenet_v3_small", pretrained="none", epochs=1,
                         batch_size=16)
    spec = scan(folder, val_split=config.val_split, seed=config.seed, check_file="auto")
    run = RunDir.create(root / f"{config.backbone}-{kind}", config.backbone)
    engine.train(spec, config, run, lambda _event: None, None)
    return Project(data=str(folder), runs=[str(run.path)], active_run=str(run.path),
                   settings=config.to_dict()).save(root / f"{kind}.tlsproj")


@pytest.fixture(scope="module")
def projects(tmp_path_factory):
    made: dict[str, Path] = {}

    def get(kind: str) -> Path:
        if kind not in made:
            made[kind] = _project(kind, tmp_path_factory.mktemp(f"audit-{kind}"))
        return made[kind]

    return get


def _drop(window, qtbot, paths: list[str]) -> None:
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(p) for p in paths])
    event = QDropEvent(QPointF(5, 5), Qt.DropAction.CopyAction, mime, Qt.MouseButton.NoButton,
                       Qt.KeyboardModifier.NoModifier)
    with qtbot.waitSignal(window.try_page.predicted, timeout=120000):
        window.try_page.dropEvent(event)


def _open(window, qtbot, project: Path) -> None:
    assert window.open_project(project)
    page = window.data_page
    qtbot.waitUntil(lambda: window.state.spec is not None and page.table.rowCount() > 0, timeout=60000)
    qtbot.waitUntil(lambda: not page.task.thread.isRunning(), timeout=60000)
    qtbot.waitUntil(lambda: bool(window.model_page.rows) and hasattr(window.model_page, "_current_blocks"),
                    timeout=120000)
    qtbot.waitUntil(lambda: "Validation" in window.evaluate_page.headline.text()
                    or "MAE" in window.evaluate_page.headline.text(), timeout=120000)
    spec = window.state.spec
    _drop(window, qtbot, [sample.path for sample in spec.val[:3]])


def _audit_pages(window, qtbot, state: str) -> list[str]:
    problems: list[str] = []
    folder = artefacts()
    for row, page in enumerate(PAGES):
        item = window.steps.item(row)
        if not item.flags() & Qt.ItemFlag.ItemIsEnabled:
            continue
        qtbot.mouseClick(window.steps.viewport(), Qt.MouseButton.LeftButton,
                         pos=window.steps.visualItemRect(item).center())
        assert window.steps.currentRow() == row
        qtbot.wait(120)  # layouts settle, thumbnails and plots draw
        window.grab().save(str(folder / f"{state}-{row + 1}-{page}.png"))
        problems += [f"{state} / {page}: {p}" for p in audit(window.stack.currentWidget())]
    problems += [f"{state} / window: {p}" for p in audit(window, contrast=False) if "QStackedWidget" not in p]
    return problems


STATES = {  # state -> (data kind or None, dark, minimum size)
    "empty": (None, False, False),
    "2-classes": ("2", False, False),
    "10-classes": ("10", False, False),
    "50-classes": ("50", False, False),
    "sound": ("sound", False, False),
    "regression": ("regression", False, False),
    "10-classes-dark": ("10", True, False),
    "50-classes-minimum-size": ("50", False, True),
    "sound-dark-minimum-size": ("sound", True, True),
}


@pytest.mark.parametrize("state", list(STATES))
def test_every_page_reads_whole_in_every_state(window, qtbot, projects, state: str) -> None:
    kind, dark, smallest = STATES[state]
    if dark:
        window.set_dark(True)
    if smallest:
        least = window.minimumSizeHint().expandedTo(window.minimumSize())
        window.resize(least)
        assert window.size() == least
    else:
        window.resize(QSize(1440, 900))
    if kind is not None:
        _open(window, qtbot, projects(kind))
    problems = _audit_pages(window, qtbot, state)
    if dark:
        window.set_dark(False)
    assert not problems, f"{len(problems)} layout problems:\n" + "\n".join(problems)
