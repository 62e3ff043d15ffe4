"""A project (.tlsproj, JSON): the data folder, the runs made on it, the settings last used, the run
chosen as the active model, and the files the user left out of training (the files themselves untouched).

Runs stay in their own folders; the project only lists them, so a moved or deleted run is reported, not
fatal. Written atomically, so a crash never leaves a half-written project.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from tlstudio import __version__
from tlstudio.core.errors import RunError
from tlstudio.core.store import atomic

SUFFIX = ".tlsproj"
FORMAT = "tlstudio-project"


@dataclass
class Project:
    data: str = ""
    runs: list[str] = field(default_factory=list)
    settings: dict[str, Any] = field(default_factory=dict)
    active_run: str = ""  # the run Evaluate and Try & export use; "" = none chosen
    excluded: list[str] = field(default_factory=list)  # files left out of training, by path
    relabelled: dict[str, str] = field(default_factory=dict)  # path -> the class the user says it is
    path: str = ""

    def add_run(self, run_dir: str | Path) -> None:
        run = str(Path(run_dir).resolve())
        if run not in self.runs:
            self.runs.append(run)

    def save(self, path: str | Path | None = None) -> Path:
        target = Path(path or self.path).expanduser()
        if target.suffix != SUFFIX:
            target = target.with_suffix(SUFFIX)
        self.path = str(target.resolve())
        payload = {"format": FORMAT, "version": 1, "created_with": __version__,
                   **{k: v for k, v in asdict(self).items() if k != "path"}}
        atomic.write_json(target, payload)
        return target

    @classmethod
    def load(cls, path: str | Path) -> Project:
        path = Path(path).expanduser()
        try:
            payload = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError as exc:
            raise RunError(f"The project {path} does not exist.") from exc
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise RunError(f"{path.name} is not a readable project file ({exc}).") from exc
        if not isinstance(payload, dict) or payload.get("format") != FORMAT:
            raise RunError(f"{path.name} is not a Transfer Learning Studio project.")
        return cls(data=str(payload.get("data", "") or ""), runs=[str(r) for r in payload.get("runs", []) or []],
                   settings=dict(payload.get("settings", {}) or {}),
                   active_run=str(payload.get("active_run", "") or ""),
                   excluded=[str(p) for p in payload.get("excluded", []) or []],
                   relabelled={str(k): str(v) for k, v in (payload.get("relabelled") or {}).items()}
                   if isinstance(payload.get("relabelled"), dict) else {},
                   path=str(path.resolve()))


def run_summary(run_dir: str | Path) -> dict[str, Any]:
    """One row of the runs table: what was trained and how well."""
    run = Path(run_dir)
    row: dict[str, Any] = {"path": str(run), "name": run.name, "exists": run.is_dir()}
    try:
        config = json.loads((run / "config.json").read_text(encoding="utf-8"))
        metrics_file = run / "metrics.json"
        metrics = json.loads(metrics_file.read_text(encoding="utf-8")) if metrics_file.is_file() else {}
    except (OSError, json.JSONDecodeError):
        row["status"] = "missing" if not run.exists() else "unreadable"
        return row
    resolved = config.get("resolved", {}) if isinstance(config.get("resolved"), dict) else {}
    split = resolved.get("split") if isinstance(resolved.get("split"), dict) else {}
    sizes = metrics.get("sizes") if isinstance(metrics.get("sizes"), dict) else {}
    row.update({
        # runs are comparable only on the same data: the same folder, split the same way, into as many files
        "data_key": json.dumps([config.get("data"), split.get("source"), split.get("val_split"),
                                split.get("seed"), split.get("group_by"), sizes.get("train"), sizes.get("val")]),
        "data": config.get("data"),
        "created": metrics.get("created") or _created(run),
        "backbone": config.get("backbone"),
        "pretrained": config.get("pretrained"),
        "depth": resolved.get("unfreeze_blocks"),
        "schedule": config.get("schedule"),
        "epochs": metrics.get("epochs"),
        "val_accuracy": metrics.get("val_accuracy"),
        "val_mae": metrics.get("val_mae"),  # a regression run's score (it has no accuracy)
        "val_loss": metrics.get("val_loss"),
        "seconds": metrics.get("train_seconds"),
        "status": metrics.get("status", "incomplete"),
        "accuracy_interval": metrics.get("accuracy_interval"),
        "augment": resolved.get("augment", config.get("augment")),
        "lr": config.get("lr"),
        "head": config.get("head"),
    })
    return row


def _created(run: Path) -> float | None:
    try:
        return (run / "config.json").stat().st_mtime
    except OSError:
        return None
