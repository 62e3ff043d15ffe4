"""Everything a run needs to be repeated: saved as config.json in the run folder.

The one source of truth for training settings: the command line derives its `train` flags from the
fields' metadata (flag, help, choices), the window's pages and project files fill the same fields, and
`validate()` checks every field with a sentence that says what to do.
"""

from __future__ import annotations

import math
import re
from dataclasses import asdict, dataclass, field, fields
from typing import Any

from tlstudio.core.errors import ConfigError
from tlstudio.core.models.catalogue import DEFAULT_BACKBONE
from tlstudio.core.models.registry import default_settings

AUGMENT_PRESETS = ("none", "light", "strong")
SCHEDULES = ("one-phase", "two-phase")
HEADS = ("linear", "mlp")
# Keys config.json holds besides the settings: what the run resolved, and which versions made it.
RECORD_KEYS = frozenset({"resolved", "tlstudio_version", "torch_version"})
_DEVICE = re.compile(r"^(auto|cpu|mps|cuda(:\d+)?)$")


def _opt(flag: str | None, help: str, **extra: Any) -> dict[str, Any]:
    return {"flag": flag, "help": help, **extra}


@dataclass
class TrainConfig:
    data: str = field(default="", metadata=_opt(None, "the data folder"))
    backbone: str = field(default=DEFAULT_BACKBONE, metadata=_opt(
        "--backbone", f"pretrained network (default: {DEFAULT_BACKBONE} for pictures, yamnet for sound; see "
                      "`tlstudio backbones`)", data_default=True))
    pretrained: str = field(default="imagenet", metadata=_opt(
        None, "imagenet, none (random initialisation) or a weights file"))
    unfreeze: str = field(default="0", metadata=_opt(
        "--unfreeze", "top blocks that train besides the head: 0 = feature extraction, 'all' = full fine-tuning "
                      "(default: 0, and all for sound with the default backbone)", data_default=True))
    head: str = field(default="linear", metadata=_opt("--head", "new classifier head (default linear)", choices=HEADS,
                                                      data_default=True))
    schedule: str = field(default="one-phase", metadata=_opt(
        "--schedule", "two-phase: train the head for --warmup-epochs, then unfreeze --unfreeze blocks",
        choices=SCHEDULES))
    warmup_epochs: int = field(default=2, metadata=_opt("--warmup-epochs", "head-only epochs of a two-phase run"))
    epochs: int = field(default=10, metadata=_opt("--epochs", "epochs in all (default %(default)s)"))
    batch_size: int = field(default=32, metadata=_opt("--batch-size", "files per batch (default %(default)s)"))
    accumulate: int = field(default=1, metadata=_opt(
        "--accumulate", "split each batch into K micro-batches and step once (gradient accumulation): the memory "
                        "of batch/K, the effective batch of --batch-size; raised by itself when memory runs out "
                        "(default %(default)s)"))
    lr: float = field(default=3e-3, metadata=_opt(
        "--lr", "the head's learning rate (default 3e-3; with --from a third of that run's)", data_default=True))
    backbone_lr_factor: float = field(default=0.1, metadata=_opt(
        "--backbone-lr-factor", "backbone learning rate = lr x this (default %(default)s)"))
    weight_decay: float = field(default=1e-4, metadata=_opt(
        "--weight-decay", "AdamW weight decay on weights (never on biases and norms; default %(default)s)"))
    label_smoothing: float = field(default=0.0, metadata=_opt(
        "--label-smoothing", "0 to 0.5; training loss only (validation loss is plain cross-entropy)"))
    augment: str = field(default="auto", metadata=_opt(
        "--augment", "auto = none for feature extraction, light when fine-tuning", choices=(*AUGMENT_PRESETS, "auto")))
    val_split: float = field(default=0.2, metadata=_opt(
        "--val-split", "share held out for validation when DATA has no val/ folder (default %(default)s)"))
    group_by: str = field(default="auto", metadata=_opt(
        "--group-by", "what must stay on one side of the split: auto (a source found in the file names, e.g. "
                      "the speaker), none, folder (sub-folders inside each class), or a regular expression whose "
                      "first group names the source (default auto)"))
    task: str = field(default="auto", metadata=_opt(
        "--task", "auto: a labels.csv of numbers means regression, else classification; regression or "
                  "classification force one (classification reads file,label rows of labels.csv too)",
        choices=("auto", "classification", "regression")))
    seed: int = field(default=0, metadata=_opt("--seed", "the same seed gives the same split and the same run"))
    device: str = field(default="auto", metadata=_opt("--device", "auto (CUDA > MPS > CPU), cuda, cuda:N, mps or cpu"))
    devices: int = field(default=1, metadata=_opt(
        "--devices", "processes training together through torch.distributed (DistributedDataParallel; gloo on "
                     "CPU, NCCL on GPUs): on CUDA one per GPU, e.g. --devices 4 for all 4 GPUs (default 1)"))
    amp: bool = field(default=True, metadata=_opt(
        "--no-amp", "no mixed precision (on CUDA: bf16 where the GPU has it, else fp16)", action="store_false"))
    workers: int = field(default=-1, metadata=_opt("--workers", "data-loading processes (-1 = automatic)"))
    checkpointing: bool = field(default=False, metadata=_opt(
        "--checkpointing", "activation checkpointing: the unfrozen blocks recompute their activations in the "
                           "backward pass instead of keeping them (far less memory for large backbones, about a "
                           "third more time)", action="store_true"))
    cache_features: bool = field(default=True, metadata=_opt(
        "--no-cache", "do not reuse or store cached embeddings", action="store_false"))
    window_seconds: float = field(default=1.0, metadata=_opt(
        "--window", "sound: clip length in seconds the model sees; longer clips are scored over sliding windows",
        data_default=True))
    start_from: str = field(default="", metadata=_opt(
        "--from", "continue from this run's model on new data (same or added classes); its backbone, head and "
                  "depth are kept, the learning rate is lowered, and its validation files are scored every epoch "
                  "(the forgetting meter)"))
    rehearsal: float = field(default=0.5, metadata=_opt(
        "--rehearsal", "with --from: the share of that run's training files mixed into training, so old classes "
                       "are not forgotten (default %(default)s; 0 turns it off)"))

    def resolved_augment(self, unfreeze_blocks: int) -> str:
        if self.augment != "auto":
            return self.augment
        fine_tunes = unfreeze_blocks > 0 or self.schedule == "two-phase"
        return "light" if fine_tunes else "none"

    def validate(self) -> None:
        """Every field, with what to do; types too (project and config files are edited by hand)."""
        self._check_types()
        _within("--epochs", self.epochs, 1, 100_000, "Train for at least one epoch.")
        _within("--batch-size", self.batch_size, 1, 65_536, "Use a batch size of at least 1.")
        _within("--accumulate", self.accumulate, 1, self.batch_size, "Use at most --batch-size micro-batches.")
        _within("--lr", self.lr, 1e-8, 10.0, "A learning rate between 1e-5 and 0.1 suits almost every run.")
        _within("--backbone-lr-factor", self.backbone_lr_factor, 0.0, 10.0, "0.1 is a good start.")
        _within("--weight-decay", self.weight_decay, 0.0, 1.0, "1e-4 is a good start; 0 turns it off.")
        _within("--label-smoothing", self.label_smoothing, 0.0, 0.5, "0.1 is usual; 0 turns it off.")
        _within("--val-split", self.val_split, 0.0, 0.9, "0.2 holds out a fifth of the files.")
        _within("--seed", self.seed, 0, 2**63 - 1, "Any whole number from 0 up.")
        _within("--devices", self.devices, 1, 1024, "1 trains in this process; N starts N processes.")
        _within("--workers", self.workers, -1, 64, "-1 decides by itself; 0 loads in the main process.")
        _within("--window", self.window_seconds, 0.1, 30.0, "1 second suits words; longer for longer sounds.")
        _within("--warmup-epochs", self.warmup_epochs, 0, 100_000, "Use 1 or more with a two-phase schedule.")
        _within("--rehearsal", self.rehearsal, 0.0, 1.0, "0.5 keeps half of the old training files.")
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


def _within(flag: str, value: float, low: float, high: float, advice: str) -> None:
    if not math.isfinite(value) or not low <= value <= high:
        raise ConfigError(f"{flag} must be a number from {low:g} to {high:g}, not {value}.", advice)


def with_data_defaults(config: TrainConfig, modality: str, given: set[str],
                       clip_seconds: float | None = None) -> TrainConfig:
    """The backbone and depth measured best for this kind of data (and, for sound, its typical clip length),
    where the user did not choose them (`given`: the settings named on the command line). The default depth
    goes with the default backbone: naming another backbone without a depth means feature extraction (0).
    """
    defaults = default_settings(modality, clip_seconds, config.window_seconds)
    data = config.to_dict()
    if "backbone" not in given:
        data["backbone"] = defaults["backbone"]
    if "unfreeze" not in given and data["backbone"] == defaults["backbone"]:
        data["unfreeze"] = defaults["unfreeze"]
    if (data["backbone"], data["unfreeze"]) == (config.backbone, config.unfreeze):
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
