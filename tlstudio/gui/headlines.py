"""The Evaluate page's headlines in words: a score with its 95% interval, a warning when the validation files are
too few to trust it, and a regression's errors against guessing the mean."""

from __future__ import annotations

from tlstudio.gui.style import WARNING_RED


def interval_text(result: dict) -> str:
    """' (95% interval 81.0–97.2%)' from a metrics report's Wilson interval, if it has one."""
    interval = result.get("accuracy_interval")
    if not interval:
        return ""
    return f" (95% interval {100 * interval['low']:.1f}–{100 * interval['high']:.1f}%)"


def small_validation_note(files: int) -> str:
    if files >= 30:
        return ""
    return (f"<br><span style='color:{WARNING_RED}'>Only {files} validation files: the interval is wide, so treat "
            "this score as a rough guide. More files make it trustworthy.</span>")


def r2_text(value: float | None) -> str:
    return "–" if value is None else f"{value:.3f}"


def num_text(value: float | None) -> str:
    return "–" if value is None else f"{value:.4g}"


def regression_headline(metrics: dict) -> str:
    target = metrics.get("target") or {}
    name = target.get("name", "value")
    text = (f"<b>Validation MAE {num_text(metrics['val_mae'])} {name}</b> · RMSE {num_text(metrics['val_rmse'])} · R² "
            f"{r2_text(metrics.get('val_r2'))} on {metrics['sizes']['val']} files · {metrics['backbone']}, "
            f"{metrics['unfreeze_blocks']} block(s) fine-tuned · best of {metrics['epochs']} epochs at epoch "
            f"{metrics['best_epoch']} · {metrics['train_seconds']:.1f} s on {metrics['device']}")
    if metrics.get("mae_guessing_the_mean") is not None:
        text += (f"<br>Always guessing the training mean ({target.get('mean', 0):.4g}) would give MAE "
                 f"{metrics['mae_guessing_the_mean']:.4g}; trained on values from {target.get('min', 0):.4g} to "
                 f"{target.get('max', 0):.4g}.")
    test = metrics.get("test") or {}
    if test.get("mae") is not None:
        text += f"<br><b>Test MAE {test['mae']:.4g}</b> on {test['files']} files of test/ (kept apart)"
    return text
