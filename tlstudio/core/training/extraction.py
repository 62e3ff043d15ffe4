"""The fast path's one pass of the frozen backbone over every split, into the shared feature cache.

Together (many processes), each process embeds its share of every split into the cache (segments named by
process, so they never collide; none merges while others read; rank 0 alone evicts), then all exchange
their rows (together.py).
"""

from __future__ import annotations

from tlstudio.core.control import Control
from tlstudio.core.data.loaders import auto_workers
from tlstudio.core.errors import DataError
from tlstudio.core.store.paths import features_cache_dir
from tlstudio.core.training import feature_cache
from tlstudio.core.training.embedding import Embedded, embed
from tlstudio.core.training.events import Listener, Problem, Progress
from tlstudio.core.training.resolved import ResolvedRun
from tlstudio.core.training.skipped import SkippedLog


def embed_splits(run: ResolvedRun, done: dict[str, Embedded], control: Control, emit: Listener,
                 skipped: SkippedLog) -> dict[str, Embedded]:
    """Every split's embeddings (`done`: splits already embedded, kept); extraction honours `control`."""
    config, together = run.config, run.together
    directory = features_cache_dir()
    name, info = feature_cache.bucket_key(run.entry.name, run.weights_id, run.description,
                                          f"{run.device.type}/{run.autocast_dtype}")
    bucket = feature_cache.Bucket(directory / name if config.cache_features else None, info,
                                  merge=not together.active)
    splits = ["train", "val"] + (["test"] if run.spec.test else []) + (["old_val"] if run.continuation else [])
    workers = auto_workers(sum(len(run.split_samples(s)) for s in splits) // together.size, config.workers)
    embedded = dict(done)
    try:
        for split in splits:
            if split in embedded:
                continue
            samples = run.split_samples(split)
            share = together.share(len(samples))
            result = embed(  # together, extraction is not stopped half-way: the exchange waits for all
                run.model, together.mine(samples), lambda subset: run.eval_loader(subset, workers), run.device,
                bucket, together.control(control),
                progress=lambda n, total, split=split: emit(Progress(f"embedding {split}", n, total)),
                autocast_dtype=run.autocast_dtype,
            )
            result = together.exchange(share, result)
            skipped.note(samples, list(result.bad))
            embedded[split] = result
    finally:  # the splits' rows were copied out (mapped scratch files): the bucket's maps can go
        bucket.close()
    if bucket.warning:
        emit(Problem(bucket.warning))
    if config.cache_features and together.is_main:
        feature_cache.evict(directory, feature_cache.limit_bytes(), keep=name)
    if len(embedded["train"].labels) == 0:
        raise DataError("No training file could be read.", "Check the files in the folder.")
    return embedded
