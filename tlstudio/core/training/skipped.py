"""The files a run could not read: kept in one list, reported once each, and written with the data set.

dataset.json records each file's size when the run started (resume refuses files that changed since):
taken once, at the first write, and reused by every later one.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Sequence

from tlstudio.core.data.spec import DatasetSpec, Sample, SkippedFile
from tlstudio.core.store.runs import RunDir
from tlstudio.core.training.events import Listener, Problem


class SkippedLog:
    def __init__(self, spec: DatasetSpec, run: RunDir, emit: Listener, writes: bool) -> None:
        self.spec, self.run, self.emit, self.writes = spec, run, emit, writes
        self.files: list[SkippedFile] = list(spec.skipped)
        self.sizes: dict[str, int] | None = None

    def note(self, samples: Sequence[Sample], bad: list[tuple[int, str]]) -> None:
        """Files of `samples` (by index) that failed to decode: said once, and written down at once."""
        known = {skipped.path for skipped in self.files}
        fresh = [(index, reason) for index, reason in bad if samples[index].path not in known]
        if not fresh:
            return
        self.files.extend(SkippedFile(samples[index].path, reason) for index, reason in fresh)
        self.emit(Problem(f"{len(fresh)} file(s) could not be read and were skipped.",
                          [samples[index].path for index, _ in fresh]))
        self.write()

    def write(self) -> None:
        if not self.writes:
            return
        if self.sizes is None:
            self.sizes = {}
            for sample in self.spec.train + self.spec.val + self.spec.test:
                with contextlib.suppress(OSError):
                    self.sizes[sample.path] = os.stat(sample.path).st_size
        self.run.write_json("dataset.json", {**self.spec.to_dict(), "sizes": self.sizes,
                                             "skipped": [vars(s) for s in self.files]})
        self.run.write_table("skipped.tsv", ["path", "reason"], [[s.path, s.reason] for s in self.files])
