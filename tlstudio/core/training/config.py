"""Everything a run needs to be repeated: saved as config.json in the run folder.

The one source of truth for training settings: each field's metadata holds its command-line flag and help,
the words, tooltip, range and step the window shows, and the kinds of data it applies to (`field_meta`). The
command line derives its `train` flags from it, the window's widgets take their ranges from it
(gui/binder.py), and `validate()` checks every field against the same ranges with a sentence that says what
to do.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields
from functools import cache
from types import MappingProxyType
from typing import Any

from tlstudio.core.errors import ConfigError
from tlstudio.core.models.registry import DEFAULT_BACKBONE, default_settings

AUGMENT_PRESETS = ("none", "light", "strong")
SCHEDULES = ("one-phase", "two-phase")
HEADS = ("linear", "mlp")
# Keys config.json holds besides the settings: what the run resolved, and which versions made it.
RECORD_KEYS = frozenset({"resolved", "tlstudio_version", "torch_version"})
_DEVICE = re.compile(r"^(auto|cpu|mps|cuda(:\d+)?)$")


BOTH = ("image", "audio")  # the kinds of data (DatasetSpec.modality) a setting applies to
SOUND = ("audio",)
# What every field's metadata holds (`field_meta` fills in these defaults). For the command line: flag, help,
# choices, action, data_default. For the window: label (its words), tooltip, choice_labels (the words of each
# choice, in the order shown), step, decimals, unit, kinds (the kinds of data it applies to). For both: min and
# max, the one range validate() enforces and the window's widgets offer (max may name the field that bounds
# it: accumulate <= batch_size), and advice, what validate() says to do besides the range.
_META_DEFAULTS: dict[str, Any] = {
    "flag": None, "help": "", "choices": None, "action": None, "data_default": False, "label": "", "tooltip": "",
    "choice_labels": None, "min": None, "max": None, "step": None, "decimals": None, "unit": "", "kinds": BOTH,
    "advice": "",
}
# Settings that say where a run starts and what it runs on, not how it learns from a kind of data: data of
# another kind never resets them (with_data_defaults(new_kind=True)).
_NOT_PER_DATA = frozenset({"data", "pretrained", "start_from", "device", "devices", "workers", "amp",
                           "checkpointing", "cache_features"})


def _opt(flag: str | None, help: str, label: str, **extra: Any) -> dict[str, Any]:
    return {"flag": flag, "help": help, "label": label, **extra}


def _number(flag: str, help: str, label: str, low: float, high: float | str, advice: str, **extra: Any
            ) -> dict[str, Any]:
    return _opt(flag, help, label, min=low, max=high, advice=advice, **extra)


@dataclass
class TrainConfig:
    data: str = field(default="", metadata=_opt(None, "the data folder", "Data folder"))
    backbone: str = field(default=DEFAULT_BACKBONE, metadata=_opt(
        "--backbone", f"pretrained network (default: {DEFAULT_BACKBONE} for pictures, yamnet for sound; see "
                      "`tlstudio backbones`)", "Backbone", data_default=True,
        tooltip="The pretrained network whose knowledge is reused. Bigger is usually more accurate and slower."))
    pretrained: str = field(default="imagenet", metadata=_opt(
        None, "imagenet, none (random initialisation) or a weights file", "Pretrained weights"))
    unfreeze: str = field(default="0", metadata=_opt(
        "--unfreeze", "top blocks that train besides the head: 0 = feature extraction, 'all' = full fine-tuning "
                      "(default: 0, and all for sound with the default backbone)", "How much of the network learns",
        data_default=True,
        tooltip="How much of the pretrained network learns again. Far left: only a new final layer trains "
                "(feature extraction: fast, needs little data). Further right: the top blocks are fine-tuned too, "
                "at a lower learning rate (better with more data, slower)."))
    head: str = field(default="linear", metadata=_opt(
        "--head", "new classifier head (default linear)", "Head", choices=HEADS, data_default=True,
        choice_labels={"linear": "Linear", "mlp": "Small MLP with dropout"},
        tooltip="The new final layer(s). Linear is best for small data."))
    schedule: str = field(default="one-phase", metadata=_opt(
        "--schedule", "two-phase: train the head for --warmup-epochs, then unfreeze --unfreeze blocks", "Schedule",
        choices=SCHEDULES, choice_labels={"one-phase": "One phase",
                                          "two-phase": "Two phases: head first, then unfreeze"},
        tooltip="Two-phase: first train only the new head for a few epochs, then unfreeze the chosen blocks. "
                "Protects the pretrained weights from the new head's early, noisy updates."))
    warmup_epochs: int = field(default=2, metadata=_number(
        "--warmup-epochs", "head-only epochs of a two-phase run", "Warm-up epochs (two-phase)", 0, 100_000,
        "Use 1 or more with a two-phase schedule.", step=1,
        tooltip="Epochs of head-only training in a two-phase schedule."))
    epochs: int = field(default=10, metadata=_number(
        "--epochs", "epochs in all (default %(default)s)", "Epochs", 1, 100_000, "Train for at least one epoch.",
        step=1, tooltip="How many times the model sees every training file."))
    batch_size: int = field(default=32, metadata=_number(
        "--batch-size", "files per batch (default %(default)s)", "Batch size", 1, 65_536,
        "Use a batch size of at least 1.", step=1,
        tooltip="How many files are processed at once. Smaller uses less memory."))
    accumulate: int = field(default=1, metadata=_number(
        "--accumulate", "split each batch into K micro-batches and step once (gradient accumulation): the memory "
                        "of batch/K, the effective batch of --batch-size; raised by itself when memory runs out "
                        "(default %(default)s)", "Micro-batches per batch", 1, "batch_size",
        "Use at most --batch-size micro-batches.", step=1,
        tooltip="Splits each batch into this many smaller ones and takes one step: the memory of a smaller "
                "batch, the result of the whole one. Raised by itself when memory runs out."))
    lr: float = field(default=3e-3, metadata=_number(
        "--lr", "the head's learning rate (default 3e-3; with --from a third of that run's)", "Learning rate",
        1e-8, 10.0, "A learning rate between 1e-5 and 0.1 suits almost every run.", data_default=True, step=1e-4,
        decimals=8, tooltip="How big each learning step is, for the new head. The backbone learns 10x slower by "
                            "default."))
    backbone_lr_factor: float = field(default=0.1, metadata=_number(
        "--backbone-lr-factor", "backbone learning rate = lr x this (default %(default)s)",
        "Backbone learning-rate factor", 0.0, 10.0, "0.1 is a good start.", step=0.05, decimals=3,
        tooltip="The backbone's learning rate as a share of the head's."))
    weight_decay: float = field(default=1e-4, metadata=_number(
        "--weight-decay", "AdamW weight decay on weights (never on biases and norms; default %(default)s)",
        "Weight decay", 0.0, 1.0, "1e-4 is a good start; 0 turns it off.", step=1e-4, decimals=6,
        tooltip="Pulls the weights towards zero a little at every step (never biases and norms); 0 turns it off."))
    label_smoothing: float = field(default=0.0, metadata=_number(
        "--label-smoothing", "0 to 0.5; training loss only (validation loss is plain cross-entropy)",
        "Label smoothing", 0.0, 0.5, "0.1 is usual; 0 turns it off.", step=0.05, decimals=2,
        tooltip="Trains towards slightly less than certain answers, which helps when some labels are wrong; "
                "0 turns it off."))
    augment: str = field(default="auto", metadata=_opt(
        "--augment", "auto = none for feature extraction, light when fine-tuning", "Augmentation",
        choices=(*AUGMENT_PRESETS, "auto"),
        choice_labels={"auto": "Automatic", "none": "None", "light": "Light", "strong": "Strong"},
        tooltip="Random crops and flips of training images, so the model learns what matters rather than "
                "memorising pictures. Off for pure feature extraction (which then runs much faster)."))
    val_split: float = field(default=0.2, metadata=_number(
        "--val-split", "share held out for validation when DATA has no val/ folder (default %(default)s)",
        "Validation share", 0.0, 0.9, "0.2 holds out a fifth of the files.", step=0.05, decimals=2,
        tooltip="Share of files held out to judge the model (when the folder has no val/)."))
    group_by: str = field(default="auto", metadata=_opt(
        "--group-by", "what must stay on one side of the split: auto (a source found in the file names, e.g. "
                      "the speaker), none, folder (sub-folders inside each class), or a regular expression whose "
                      "first group names the source (default auto)", "Keep together"))
    task: str = field(default="auto", metadata=_opt(
        "--task", "auto: a labels.csv of numbers means regression, else classification; regression or "
                  "classification force one (classification reads file,label rows of labels.csv too)", "Task",
        choices=("auto", "classification", "regression")))
    seed: int = field(default=0, metadata=_number(
        "--seed", "the same seed gives the same split and the same run", "Seed", 0, 2**63 - 1,
        "Any whole number from 0 up.", step=1, tooltip="The same seed on the same machine gives the same run."))
    device: str = field(default="auto", metadata=_opt(
        "--device", "auto (CUDA > MPS > CPU), cuda, cuda:N, mps or cpu", "Device",
        tooltip="Where the maths runs. A graphics card (CUDA or Apple) is much faster than the processor. With "
                "several NVIDIA GPUs, “All N GPUs together” trains on every one at once (one process each)."))
    devices: int = field(default=1, metadata=_number(
        "--devices", "processes training together through torch.distributed (DistributedDataParallel; gloo on "
                     "CPU, NCCL on GPUs): on CUDA one per GPU, e.g. --devices 4 for all 4 GPUs (default 1)",
        "Processes", 1, 1024, "1 trains in this process; N starts N processes.", step=1))
    amp: bool = field(default=True, metadata=_opt(
        "--no-amp", "no mixed precision (on CUDA: bf16 where the GPU has it, else fp16)", "Mixed precision",
        action="store_false"))
    workers: int = field(default=-1, metadata=_number(
        "--workers", "data-loading processes (-1 = automatic)", "Data-loading processes", -1, 64,
        "-1 decides by itself; 0 loads in the main process.", step=1))
    checkpointing: bool = field(default=False, metadata=_opt(
        "--checkpointing", "activation checkpointing: the unfrozen blocks recompute their activations in the "
                           "backward pass instead of keeping them (far less memory for large backbones, about a "
                           "third more time)", "Activation checkpointing", action="store_true"))
    cache_features: bool = field(default=True, metadata=_opt(
        "--no-cache", "do not reuse or store cached embeddings", "Reuse cached embeddings", action="store_false"))
    window_seconds: float = field(default=1.0, metadata=_number(
        "--window", "sound: clip length in seconds the model sees; longer clips are scored over sliding windows",
        "Window (sound)", 0.1, 30.0, "1 second suits words; longer for longer sounds.", data_default=True,
        step=0.5, decimals=2, unit="s", kinds=SOUND,
        tooltip="How much of a clip the model hears at once; longer clips are scored over sliding windows. "
                "1 second suits words; longer for longer sounds."))
    start_from: str = field(default="", metadata=_opt(
        "--from", "continue from this run's model on new data (same or added classes); its backbone, head and "
                  "depth are kept, the learning rate is lowered, and its validation files are scored every epoch "
                  "(the forgetting meter)", "Continue from run"))
    rehearsal: float = field(default=0.5, metadata=_number(
        "--rehearsal", "with --from: the share of that run's training files mixed into training, so old classes "
                       "are not forgotten (default %(default)s; 0 turns it off)", "Rehearsal share", 0.0, 1.0,
        "0.5 keeps half of the old training files.", step=0.05, decimals=2))

    def resolved_augment(self, unfreeze_blocks: int) -> str:
        if self.augment != "auto":
            return self.augment
        fine_tunes = unfreeze_blocks > 0 or self.schedule == "two-phase"
        return "light" if fine_tunes else "none"

    def validate(self) -> None:
        """Every field, with what to do; types too (project and config files are edited by hand)."""
        self._check_types()
        for f in fields(self):
            meta = field_meta(f.name)
            if meta["min"] is not None:
                low, high = numeric_range(f.name, self)
                _within(meta["flag"], getattr(self, f.name), low, high, meta["advice"])
        if self.augment not in (*AUGMENT_PRESETS, "auto"):
            raise ConfigError(f"--augment takes one of {', '.join(AUGMENT_PRESETS)} or auto, not '{self.augment}'.")
        if self.schedule not in SCHEDULES:
            raise ConfigError(f"--schedule takes one of {', '.join(SCHEDULES)}, not '{self.schedule}'.")
        if self.schedule == "two-phase" and not 1 <= self.warmup_epochs < self.epochs:
            raise ConfigError(
                f"A two-phase schedule needs 1 <= --warmup-epochs < --epochs ({self.warmup_epochs} vs {self.epochs})."
            )
        if self.task not in ("auto", "classification", "regression"):
            raise ConfigError(f"--task takes auto, classification or regression, not '{self.task}'.")
        if self.head not in HEADS:
            raise ConfigError(f"--head takes linear or mlp, not '{self.head}'.")
        if not _DEVICE.match(self.device):
            raise ConfigError(f"--device takes auto, cpu, cuda, cuda:N or mps, not '{self.device}'.")
        if not (self.unfreeze.strip().lower() in ("all", "full") or re.fullmatch(r"-?\d+", self.unfreeze.strip())):
            raise ConfigError(f"--unfreeze takes a number of blocks or 'all', not '{self.unfreeze}'.")
        if self.group_by not in ("auto", "none", "folder"):
            from tlstudio.core.data.grouping import compile_group_regex

            compile_group_regex(self.group_by)
        from tlstudio.core.models.registry import get_entry

        get_entry(self.backbone)

    def _check_types(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            wanted = {"int": int, "float": float, "str": str, "bool": bool}[str(f.type)]
            if wanted is float and isinstance(value, int) and not isinstance(value, bool):
                setattr(self, f.name, float(value))
                continue
            if not isinstance(value, wanted) or (wanted is int and isinstance(value, bool)):
                raise ConfigError(f"The setting '{f.name}' must be a {wanted.__name__}, not {value!r}.",
                                  "Fix or remove it in the settings file.")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def parse(cls, data: dict[str, Any]) -> tuple[TrainConfig, list[str]]:
        """(the config, the keys that are not settings), so callers can say what they ignored."""
        if not isinstance(data, dict):
            raise ConfigError(f"Settings must be a JSON object, not {type(data).__name__}.")
        known = {f.name for f in fields(cls)}
        unknown = sorted(key for key in data if key not in known and key not in RECORD_KEYS)
        return cls(**{key: value for key, value in data.items() if key in known}), unknown

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrainConfig:
        """Strict: a key that is not a setting is an error that names it (never silently dropped)."""
        config, unknown = cls.parse(data)
        if unknown:
            raise ConfigError(f"Unknown setting(s): {', '.join(unknown)}.",
                              f"Known settings: {', '.join(f.name for f in fields(cls))}.")
        return config


@cache
def _all_meta() -> dict[str, Mapping[str, Any]]:
    return {f.name: MappingProxyType({**_META_DEFAULTS, **f.metadata}) for f in fields(TrainConfig)}


def setting_names() -> list[str]:
    """Every setting, in the order of TrainConfig's fields."""
    return list(_all_meta())


def field_meta(name: str) -> Mapping[str, Any]:
    """A setting's metadata, every key present (see _META_DEFAULTS); KeyError for a name that is no setting."""
    return _all_meta()[name]


def numeric_range(name: str, config: TrainConfig | None = None) -> tuple[float, float]:
    """(lowest, highest) that validate() accepts for a numeric setting. A maximum that another setting sets
    (accumulate <= batch_size) is that setting's value in `config`, or without one, that setting's own maximum."""
    meta = field_meta(name)
    if meta["min"] is None:
        raise KeyError(f"{name} is not a numeric setting")
    high = meta["max"]
    if isinstance(high, str):
        high = getattr(config, high) if config is not None else numeric_range(high)[1]
    return meta["min"], high


def _within(flag: str, value: float, low: float, high: float, advice: str) -> None:
    if not math.isfinite(value) or not low <= value <= high:
        raise ConfigError(f"{flag} must be a number from {low:g} to {high:g}, not {value}.", advice)


def with_data_defaults(config: TrainConfig, modality: str, given: set[str],
                       clip_seconds: float | None = None, new_kind: bool = False) -> TrainConfig:
    """The backbone and depth measured best for this kind of data (and, for sound, its typical clip length),
    where the user did not choose them (`given`: the settings named on the command line, or set by hand in the
    window). The default depth goes with the default backbone: naming another backbone without a depth means
    feature extraction (0). `new_kind`: the settings were made for another kind of data, so every other setting
    not given goes back to its default too (the window's photo settings must not carry over to sound); where a
    run starts and what it runs on (folder, weights, device) stay.
    """
    data = config.to_dict()
    if new_kind:
        plain = TrainConfig().to_dict()
        data.update({key: plain[key] for key in data if key not in given and key not in _NOT_PER_DATA})
    defaults = default_settings(modality, clip_seconds, data["window_seconds"])
    if "backbone" not in given:
        data["backbone"] = defaults["backbone"]
    if "unfreeze" not in given and data["backbone"] == defaults["backbone"]:
        data["unfreeze"] = defaults["unfreeze"]
    if data == config.to_dict():
        return config
    resolved = TrainConfig.from_dict(data)
    resolved.validate()
    return resolved


def continuation_defaults(config: TrainConfig, old: dict[str, Any], given: set[str]) -> TrainConfig:
    """Settings of a run continued from `old` (that run's config.json): the same network, head and input
    window (its weights fit nothing else), its depth unless chosen, and a third of its learning rate unless
    chosen, because a lower rate is the first defence against forgetting what it knew."""
    data = config.to_dict()
    for key, flag in (("backbone", "--backbone"), ("head", "--head"), ("window_seconds", "--window")):
        if key in given and data[key] != old.get(key, data[key]):
            raise ConfigError(f"{flag} {data[key]} differs from the run continued from ({old.get(key)}).",
                              f"Leave {flag} out: a continued run keeps the model it starts from.")
        data[key] = old.get(key, data[key])
    if "unfreeze" not in given:
        data["unfreeze"] = str((old.get("resolved") or {}).get("unfreeze_blocks", old.get("unfreeze", "0")))
    if "lr" not in given:
        data["lr"] = float(old.get("lr", data["lr"])) / 3
    resolved = TrainConfig.from_dict(data)
    resolved.validate()
    return resolved


def from_scratch(config: TrainConfig) -> TrainConfig:
    """The same network, head and budget without pretraining: what transfer learning is measured against.

    Everything trains (nothing pretrained is worth freezing), at one learning rate, with the same epochs,
    batch size and augmentation as the run it is compared with.
    """
    data = config.to_dict()
    data.update(pretrained="none", unfreeze="all", backbone_lr_factor=1.0, schedule="one-phase")
    if data["augment"] == "auto":
        data["augment"] = "light"
    return TrainConfig.from_dict(data)
