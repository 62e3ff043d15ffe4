"""Every button of the studio is clicked, as a user clicks it, by some GUI test (issue 23). Runs last in
tests/gui (the name), after the tests whose windows and clicks filled the inventory (tests/gui/buttons.py).
The inventory is written to the layout audit's artefact folder as buttons.json."""

from __future__ import annotations

import json

import pytest

from tests.gui import buttons
from tests.gui.test_layout_audit import artefacts

pytestmark = pytest.mark.gui


def test_every_button_is_clicked_by_some_test() -> None:
    assert buttons.present, "no studio window was opened before this test: run the whole tests/gui folder"
    missing = sorted(set(buttons.present) - buttons.clicked)
    report = {"present": len(buttons.present), "clicked": len(buttons.clicked & set(buttons.present)),
              "buttons": {name: {"text": text, "clicked": name in buttons.clicked}
                          for name, text in sorted(buttons.present.items())}}
    (artefacts() / "buttons.json").write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n")
    print(f"\nbuttons clicked by a test: {report['clicked']} of {report['present']}")
    assert not missing, (f"{len(missing)} of {len(buttons.present)} buttons are never clicked by a test: "
                         + ", ".join(f"{name} ({buttons.present[name]!r})" for name in missing))
