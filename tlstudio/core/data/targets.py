"""labels.csv: a target for each file, beside class folders as the other way to say what a file is.

Columns `file,value` (a number: regression) or `file,label` (a class name); paths are relative to the
folder and may sit in sub-folders. The studio only reads the file. Numbers in every row make a regression
task unless classification is asked for; one text value makes the column class names.
"""

from __future__ import annotations

import csv
import math
import os
from dataclasses import dataclass, field
from pathlib import Path

from tlstudio.core.errors import DataError

TABLE_NAMES = ("labels.csv",)
TASKS = ("auto", "classification", "regression")
MAX_ROWS = 2_000_000
MAX_VALUE = 1e9  # float32 targets: beyond this, steps between neighbouring numbers exceed 64


@dataclass
class LabelTable:
    path: Path
    column: str  # the target column's name, shown as the unit of a regression ("value", "age", ...)
    rows: list[tuple[str, str]]  # (path relative to the folder, the raw text of the target)
    problems: list[str] = field(default_factory=list)

    def numeric(self) -> bool:
        return bool(self.rows) and all(_number(text) is not None for _, text in self.rows)


def find_table(root: Path) -> Path | None:
    """labels.csv directly in the folder (any case)."""
    try:
        names = {entry.name.lower(): Path(entry.path) for entry in os.scandir(root) if entry.is_file()}
    except OSError:
        return None
    return next((names[n] for n in TABLE_NAMES if n in names), None)


def read_table(path: Path) -> LabelTable:
    """The first column names the file, the second (or a column called value/label/target) the target."""
    try:
        with open(path, newline="", encoding="utf-8-sig") as handle:
            lines = list(csv.reader(handle))
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise DataError(f"{path} cannot be read ({exc}).", "Save it as a UTF-8 CSV with columns file,value.") from exc
    lines = [line for line in lines if any(cell.strip() for cell in line)]
    if len(lines) < 2 or len(lines) > MAX_ROWS:
        raise DataError(f"{path} holds {max(len(lines) - 1, 0)} rows.",
                        "Write a header line (file,value) and one line per file.")
    header = [cell.strip().lower() for cell in lines[0]]
    if len(header) < 2:
        raise DataError(f"{path} needs two columns (file and its value or label), found {len(header)}.",
                        "Write a header line such as file,value.")
    file_col = next((i for i, name in enumerate(header) if name in ("file", "path", "filename")), 0)
    target_col = next((i for i, name in enumerate(header) if name in ("value", "label", "target", "y")
                       and i != file_col), 1 if file_col == 0 else 0)
    rows, problems = [], []
    seen: set[str] = set()
    for number, line in enumerate(lines[1:], start=2):
        if len(line) <= max(file_col, target_col):
            problems.append(f"line {number} has too few columns")
            continue
        name, text = line[file_col].strip().replace("\\", "/"), line[target_col].strip()
        if not name or not text:
            problems.append(f"line {number} has an empty {'file' if not name else 'value'}")
            continue
        if name in seen:
            problems.append(f"line {number} lists {name} a second time (the first line counts)")
            continue
        seen.add(name)
        rows.append((name, text))
    if not rows:
        raise DataError(f"{path} lists no file with a value.", "Write one line per file: file,value.")
    return LabelTable(path, lines[0][target_col].strip() or "value", rows, problems)


def resolve_task(table: LabelTable, task: str) -> str:
    if task not in TASKS:
        raise DataError(f"--task takes one of {', '.join(TASKS)}, not '{task}'.")
    numeric = table.numeric()
    if task == "regression" and not numeric:
        bad = next(text for _, text in table.rows if _number(text) is None)
        raise DataError(f"Regression needs a number for every file, but {table.path.name} holds '{bad}'.",
                        "Fix that row, or train a classifier on the column (--task classification).")
    resolved = task if task != "auto" else ("regression" if numeric else "classification")
    if resolved == "regression":
        huge = next((text for _, text in table.rows if abs(value_of(text)) > MAX_VALUE), None)
        if huge is not None:
            raise DataError(f"{table.path.name} holds {huge}, beyond the ±{MAX_VALUE:.0e} a regression here keeps "
                            "precise.", "Subtract an offset or change the unit (seconds to days, say).")
    return resolved


def _number(text: str) -> float | None:
    try:
        value = float(text)
    except ValueError:
        return None
    return value if math.isfinite(value) else None


def value_of(text: str) -> float:
    value = _number(text)
    assert value is not None
    return value
