"""Files told by their bytes, not their names: a phone's AAC memo named .mp3 is said to be one."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import soundfile as sf

from tlstudio.core.data.scan import scan
from tlstudio.core.media.sniff import content_kind, misnamed


def test_an_aac_memo_named_mp3_is_reported_as_what_it_is(tmp_path: Path) -> None:
    data = tmp_path / "data"
    for word in ("yes", "no"):
        (data / word).mkdir(parents=True)
        for k in range(3):
            tone = 0.3 * np.sin(np.linspace(0, 2000 * (k + 1), 16000)).astype("float32")
            sf.write(data / word / f"{word}_{k}.wav", tone, 16000)
    memo = data / "yes" / "memo.mp3"  # an M4A container's first bytes, as iPhones write them
    memo.write_bytes(b"\x00\x00\x00\x20ftypM4A \x00\x00\x00\x00M4A mp42isom" + bytes(200))
    assert content_kind(memo) == "AAC audio (M4A)" and misnamed(memo) == "AAC audio (M4A) inside a .mp3 name"
    spec = scan(data, check_file="auto")
    reasons = {Path(s.path).name: s.reason for s in spec.skipped}
    assert reasons == {"memo.mp3": "AAC audio (M4A) inside a .mp3 name: a format this studio cannot read yet"}
    assert "does not exist" not in reasons["memo.mp3"]


def test_the_problems_list_starts_with_the_count_by_reason() -> None:
    from tlstudio.gui.data_digest import problem_summary

    reasons = ["AAC audio (M4A) inside a .mp3 name: a format this studio cannot read yet"] * 120 + \
        ["empty file (0 bytes)"] * 3 + ["image too large (9000x9000 pixels)"]
    assert problem_summary(reasons) == ["124 files cannot be used. 120 files: AAC audio (M4A) inside a .mp3 name; "
                                        "3 files: empty file; 1 file: image too large"]
    assert problem_summary([]) == []
