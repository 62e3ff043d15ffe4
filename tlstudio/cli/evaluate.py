"""`evaluate`: a trained run judged on its validation split or on a new folder (to notice drift)."""

from __future__ import annotations

import argparse

from tlstudio.cli.common import EXIT_OK

MATRIX_CLASSES = 12  # wider confusion matrices are summarised on the terminal


def evaluate_command(args: argparse.Namespace) -> int:
    import json

    from tlstudio.core.inference.evaluation import evaluate_run
    from tlstudio.core.store.runs import RunDir

    run = RunDir.open(args.run)
    result, tta = evaluate_run(run, args.data, tta=args.tta)
    if args.json:
        print(json.dumps({"result": result, "tta": tta}, indent=2, ensure_ascii=False))
        return EXIT_OK
    print(f"Run: {run.path}")
    print(f"Data: {result['data']} ({result['files']} files)")
    if result.get("task") == "regression":
        _print_regression_evaluation(result, tta, args)
        return EXIT_OK
    trained = result["trained_val_accuracy"]
    line = f"Accuracy {result['accuracy']:.4f}   macro F1 {result['macro_f1']:.4f}"
    if args.data and trained is not None:
        change = result["accuracy"] - trained
        line += f"   (at training, on its validation split: {trained:.4f}; change {change:+.4f})"
    print(line)
    if tta:
        print(f"With test-time augmentation: accuracy {tta['accuracy']:.4f}   macro F1 {tta['macro_f1']:.4f}")
    classes = list(result["per_class"])
    width = max(len(c) for c in classes) + 2
    print(f"{'class':<{width}}precision  recall  f1     n")
    for name, row in result["per_class"].items():
        print(f"{name:<{width}}{row['precision']:.3f}      {row['recall']:.3f}   {row['f1']:.3f}  {row['support']}")
    if len(classes) <= MATRIX_CLASSES:
        print("Confusion matrix (rows: true, columns: predicted):")
        print(" " * width + " ".join(f"{c[:6]:>6}" for c in classes))
        for name, row in zip(classes, result["confusion_matrix"], strict=True):
            print(f"{name:<{width}}" + " ".join(f"{v:>6}" for v in row))
    else:  # 200 columns fit no terminal: the most frequent confusions instead
        pairs = sorted(((count, classes[i], classes[j]) for i, row in enumerate(result["confusion_matrix"])
                        for j, count in enumerate(row) if i != j and count), reverse=True)[:15]
        print(f"Most frequent confusions ({len(classes)} classes; the full matrix is in --json):")
        for count, true, predicted in pairs:
            print(f"  {count:>5}  {true} -> {predicted}")
    if result["unknown_classes"]:
        print(f"note: class folder(s) the model does not know were left out: {', '.join(result['unknown_classes'])}")
    _print_drift_and_unreadable(result)
    if result.get("changed_since_training"):
        changed = result["changed_since_training"]
        print(f"note: {len(changed)} file(s) changed or vanished since training (e.g. {changed[0]}); "
              "the scores above are for the files as they are now")
    wrong = result.get("misclassified", [])[: args.worst]
    if wrong:
        print("Most confidently wrong:")
        for item in wrong:
            print(f"  {item['confidence']:.3f}  {item['true']} -> {item['predicted']}  {item['path']}")
    return EXIT_OK


def _print_drift_and_unreadable(result: dict) -> None:
    """What both kinds of evaluation say after their scores: how unlike the training files the data is, and
    which files could not be read."""
    if result.get("unfamiliar_share") is not None:
        print(f"Unlike the training files: {result['unfamiliar_share']:.1%} of these files (about 5% is expected "
              "of data like the training data; much more means the data has drifted)")
    for item in result["unreadable"][:10]:
        print(f"unreadable: {item['path']}: {item['reason']}")


def _print_regression_evaluation(result: dict, tta: dict | None, args: argparse.Namespace) -> None:
    name = (result.get("target") or {}).get("name", "value")
    if result.get("mae") is None:
        print("No file could be scored.")
        for item in result["unreadable"][:10]:
            print(f"unreadable: {item['path']}: {item['reason']}")
        return
    r2 = result["r2"]
    line = (f"MAE {result['mae']:.4f} {name}   RMSE {result['rmse']:.4f}   R² "
            f"{r2 if r2 is not None else float('nan'):.3f}")
    if args.data and result.get("trained_val_mae") is not None:
        line += f"   (at training, on its validation split: MAE {result['trained_val_mae']:.4f})"
    print(line)
    if result.get("mae_guessing_the_mean") is not None:
        print(f"Always guessing the training mean would give MAE {result['mae_guessing_the_mean']:.4f}")
    if tta:
        print(f"With test-time augmentation: MAE {tta['mae']:.4f}   RMSE {tta['rmse']:.4f}")
    _print_drift_and_unreadable(result)
    worst = result.get("largest_errors", [])[: args.worst]
    if worst:
        print("Largest errors (true -> predicted):")
        for item in worst:
            print(f"  {item['error']:+.3f}  {item['true']:.4g} -> {item['predicted']:.4g}  {item['path']}")
