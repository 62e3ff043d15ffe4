"""Settings: every field checked with words that say what to do; unknown keys named, never dropped."""

from __future__ import annotations

import pytest

from tlstudio.cli import main
from tlstudio.core.errors import ConfigError
from tlstudio.core.training.config import TrainConfig


@pytest.mark.parametrize(
    ("field", "value", "words"),
    [
        ("lr", float("nan"), "--lr"),
        ("lr", float("inf"), "--lr"),
        ("lr", 0.0, "--lr"),
        ("weight_decay", float("nan"), "--weight-decay"),
        ("weight_decay", -1.0, "--weight-decay"),
        ("backbone_lr_factor", float("nan"), "--backbone-lr-factor"),
        ("label_smoothing", 2.0, "--label-smoothing"),
        ("val_split", 1.0, "--val-split"),
        ("val_split", -0.1, "--val-split"),
        ("seed", -1, "--seed"),
        ("seed", 10**20, "--seed"),
        ("epochs", 0, "--epochs"),
        ("batch_size", 0, "--batch-size"),
        ("workers", -2, "--workers"),
        ("window_seconds", 0.0, "--window"),
        ("device", "gpu", "--device"),
        ("unfreeze", "some", "--unfreeze"),
        ("group_by", "(", "regular expression"),
        ("head", "deep", "--head"),
        ("augment", "heavy", "--augment"),
        ("backbone", "resnet9000", "Unknown backbone"),
        ("epochs", "10", "must be a int"),
        ("amp", "yes", "must be a bool"),
    ],
)
def test_every_field_is_checked(field: str, value, words: str) -> None:
    config = TrainConfig(**{field: value})
    with pytest.raises(ConfigError, match=words.replace("(", r"\(")):
        config.validate()


def test_the_defaults_are_valid_and_integers_are_accepted_as_floats() -> None:
    TrainConfig().validate()
    config = TrainConfig(lr=1, weight_decay=0)
    config.validate()
    assert isinstance(config.lr, float)


def test_unknown_keys_are_named_not_dropped() -> None:
    with pytest.raises(ConfigError, match=r"Unknown setting.*epoks"):
        TrainConfig.from_dict({"epoks": 5, "lr": 0.01})
    config, unknown = TrainConfig.parse({"epoks": 5, "lr": 0.01, "resolved": {}})
    assert unknown == ["epoks"] and config.lr == 0.01  # what a run records beside its settings is no surprise


@pytest.mark.parametrize("flags", [["--lr", "nan"], ["--lr", "inf"], ["--weight-decay", "nan"],
                                   ["--backbone-lr-factor", "nan"], ["--label-smoothing", "2"],
                                   ["--seed", "1e20"], ["--val-split", "1.5"]])
def test_the_command_line_refuses_bad_values_with_exit_2(flags: list[str], shapes_dir, tmp_path, capsys) -> None:
    with pytest.raises(SystemExit) as exit_info:  # argparse refuses what is not a number of the right kind
        code = main(["train", str(shapes_dir), "--out", str(tmp_path / "run"), *flags])
        raise SystemExit(code)
    assert exit_info.value.code == 2
    assert "Traceback" not in capsys.readouterr().err
    assert not (tmp_path / "run").exists()  # refused before anything was written


def test_each_kind_of_data_gets_its_measured_default_unless_the_user_chose() -> None:
    from tlstudio.core.training.config import with_data_defaults

    plain = TrainConfig(data="x")
    sound = with_data_defaults(plain, "audio", set())
    assert (sound.backbone, sound.unfreeze) == ("yamnet", "all")
    photos = with_data_defaults(plain, "image", set())
    assert (photos.backbone, photos.unfreeze) == ("mobilenet_v2", "0")
    chosen = TrainConfig(data="x", backbone="resnet18")
    assert with_data_defaults(chosen, "audio", {"backbone"}) is chosen  # a named backbone keeps depth 0
    named = with_data_defaults(TrainConfig(data="x", backbone="yamnet"), "audio", {"backbone"})
    assert named.unfreeze == "all"  # the default backbone, named, comes with its default depth
    depth = with_data_defaults(TrainConfig(data="x", unfreeze="2"), "audio", {"unfreeze"})
    assert (depth.backbone, depth.unfreeze) == ("yamnet", "2")


def test_long_recordings_default_to_frozen_features_and_short_clips_to_fine_tuning(tmp_path) -> None:
    from tlstudio.core.data.scan import scan
    from tlstudio.core.models.registry import default_settings
    from tlstudio.core.training.config import with_data_defaults
    from tlstudio.demo_audio import make_sound_folder

    assert default_settings("audio", clip_seconds=0.6)["unfreeze"] == "all"  # words: fine-tune
    assert default_settings("audio", clip_seconds=5.0)["unfreeze"] == "0"  # 5 s scenes: frozen, windows pooled
    assert default_settings("audio", clip_seconds=5.0, window_seconds=3.0)["unfreeze"] == "all"
    assert default_settings("image", clip_seconds=5.0)["unfreeze"] == "0"
    spec = scan(make_sound_folder(tmp_path / "sounds", per_class=3, seed=1))
    assert spec.clip_seconds is not None and 0.1 < spec.clip_seconds < 10
    resolved = with_data_defaults(TrainConfig(data="x"), "audio", set(), clip_seconds=6.0)
    assert (resolved.backbone, resolved.unfreeze) == ("yamnet", "0")


def test_every_numeric_setting_has_one_range_that_validate_enforces() -> None:
    import math

    from tlstudio.core.training.config import field_meta, numeric_range, setting_names

    numeric = [name for name in setting_names() if field_meta(name)["min"] is not None]
    assert {"epochs", "batch_size", "accumulate", "lr", "seed", "val_split", "window_seconds"} <= set(numeric)
    for name in numeric:
        meta = field_meta(name)
        assert meta["label"] and meta["advice"] and meta["flag"], name
        low, high = numeric_range(name, TrainConfig())
        whole = isinstance(getattr(TrainConfig(), name), int)
        below, above = ((low - 1, high + 1) if whole
                        else (math.nextafter(low, -math.inf), math.nextafter(high, math.inf)))
        for value in (low, high):
            TrainConfig(**{name: value}).validate()
        for value in (below, above):
            with pytest.raises(ConfigError) as refused:
                TrainConfig(**{name: value}).validate()
            assert refused.value.message == f"{meta['flag']} must be a number from {low:g} to {high:g}, not {value}."
            assert refused.value.hint == meta["advice"]
    assert field_meta("window_seconds")["kinds"] == ("audio",) and field_meta("epochs")["kinds"] == ("image", "audio")


def test_a_maximum_set_by_another_setting_follows_it() -> None:
    from tlstudio.core.training.config import numeric_range

    assert numeric_range("accumulate", TrainConfig(batch_size=8)) == (1, 8)
    assert numeric_range("accumulate") == numeric_range("batch_size")
    TrainConfig(batch_size=8, accumulate=8).validate()
    with pytest.raises(ConfigError, match="--accumulate must be a number from 1 to 8, not 9"):
        TrainConfig(batch_size=8, accumulate=9).validate()


def test_data_of_another_kind_resets_what_was_not_given() -> None:
    from tlstudio.core.training.config import with_data_defaults

    photos = TrainConfig(data="x", epochs=3, lr=0.01, batch_size=16, device="cpu", pretrained="none")
    sound = with_data_defaults(photos, "audio", {"batch_size"}, new_kind=True)
    assert (sound.epochs, sound.lr, sound.batch_size) == (10, 3e-3, 16)  # the user's batch size stays
    assert (sound.data, sound.device, sound.pretrained) == ("x", "cpu", "none")  # where and on what: kept
    assert (sound.backbone, sound.unfreeze) == ("yamnet", "all")
    chosen = with_data_defaults(TrainConfig(data="x", backbone="resnet18", unfreeze="2"), "audio", {"backbone"},
                                new_kind=True)
    assert (chosen.backbone, chosen.unfreeze) == ("resnet18", "0")  # another backbone: its depth is not the default's
    same = with_data_defaults(photos, "image", set())  # the same kind: only the backbone and depth follow
    assert same.epochs == 3 and same.backbone == "mobilenet_v2"
