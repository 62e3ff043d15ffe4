"""The learning-rate range test: the suggestion rule on known curves, and a real range test end to end."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from tlstudio.cli import main
from tlstudio.core.data.scan import scan
from tlstudio.core.errors import DataError
from tlstudio.core.training.config import TrainConfig
from tlstudio.core.training.lr_finder import find_learning_rate, suggest


def test_the_suggestion_is_where_the_loss_falls_fastest_before_its_minimum() -> None:
    rates = [10 ** (-7 + 7 * i / 99) for i in range(100)]
    # flat, a fall centred at 1e-3, a minimum near 1e-1, then a blow-up
    losses = [2.0 - 1.5 / (1 + math.exp(-3 * (math.log10(r) + 3))) + (5 * (math.log10(r) + 1) ** 2
              if r > 0.1 else 0.0) for r in rates]
    steepest, lowest = suggest(rates, losses)
    assert 5e-4 < steepest < 2e-3
    assert 2e-2 < lowest < 0.3
    with pytest.raises(DataError):
        suggest(rates[:3], losses[:3])


def test_a_range_test_runs_the_run_s_own_set_up_and_leaves_nothing_behind(shapes_dir: Path, tmp_path: Path,
                                                                         capsys) -> None:
    config = TrainConfig(data=str(shapes_dir), backbone="mobilenet_v3_small", pretrained="none", unfreeze="1",
                         batch_size=16, cache_features=False)
    seen = []
    test = find_learning_rate(scan(shapes_dir), config, steps=20, progress=lambda done, total: seen.append(done))
    assert seen[-1] == len(test.losses) <= 20 and test.learning_rates == sorted(test.learning_rates)
    assert test.learning_rates[0] == pytest.approx(1e-7) and 1e-7 <= test.suggestion <= 1.0
    assert all(math.isfinite(v) for v in test.losses)
    out = tmp_path / "lr.csv"
    assert main(["lr-find", str(shapes_dir), "--backbone", "mobilenet_v3_small", "--pretrained", "none",
                 "--unfreeze", "0", "--steps", "30", "--csv", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "Suggested learning rate" in printed and "--lr" in printed
    assert out.read_text().splitlines()[0] == "learning_rate,smoothed_loss"
    assert main(["lr-find", str(shapes_dir), "--steps", "3"]) == 2
