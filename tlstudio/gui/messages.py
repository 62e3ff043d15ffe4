"""Words the window says: short help per page (F1), and errors said plainly (no raw socket errors)."""

from __future__ import annotations

HELP = {
    0: "<b>Data</b>: choose a folder with one sub-folder per class (or train/ and val/ folders). The studio "
       "only reads it. The table shows each class's files and how they split; <i>Problems found</i> lists "
       "files that cannot be used and advice about the data. Right-click a thumbnail to leave a file out "
       "of training (the file itself is never touched).",
    1: "<b>Model</b>: pick a pretrained network; the slider sets how much of it learns again (left: only a "
       "new final layer; right: every block). Weights that are not on this computer can be downloaded, or "
       "imported from a file brought from another computer.",
    2: "<b>Train</b>: live curves of loss and accuracy. Pause holds the run after the current batch; Stop "
       "ends it and keeps the best weights so far; a stopped run can be continued.",
    3: "<b>Evaluate</b>: accuracy on the validation files with its 95% interval, per-class precision and "
       "recall, and the confusion matrix (rows: true class, columns: predicted). Click a cell to see its files.",
    4: "<b>Try &amp; export</b>: drop files to see the model's top-3 answers; export it as TorchScript, ONNX "
       "or a checkpoint, with the preprocessing inside.",
    5: "<b>Compare</b>: every run of the project. Double-click a run (or <i>Use this run</i>) to make it the "
       "model that Evaluate and Try &amp; export use. <i>Does transfer help?</i> trains the same network from "
       "random weights on the run's own split.",
}


def plain_error(message: str, hint: str = "") -> tuple[str, str]:
    """No raw socket errors: what went wrong in words, and what to do inside the window."""
    lowered = message.lower()
    offline = ("name or service not known", "temporary failure in name resolution", "network is unreachable",
               "urlopen error", "nodename nor servname", "getaddrinfo failed", "no route to host",
               "connection refused", "timed out", "errno -2", "errno -3")
    if any(text in lowered for text in offline):
        return ("This computer cannot reach the internet, so the weights could not be downloaded.",
                "Press “Import a weights file…” to use a copy brought from another computer, or pick a "
                "backbone marked “✓ on this computer”.")
    return message, hint


def score_text(metrics: dict) -> str:
    """A run's headline: "accuracy 96.1%", or a regression's "MAE 0.41 value"."""
    if metrics.get("task") == "regression":
        name = (metrics.get("target") or {}).get("name", "")
        mae = metrics.get("val_mae")
        return f"MAE {mae:.4g} {name}".rstrip() if mae is not None else "MAE – (no file could be scored)"
    return f"accuracy {metrics['val_accuracy']:.1%}"
