"""Using a trained run: metrics, evaluation, prediction and export."""
