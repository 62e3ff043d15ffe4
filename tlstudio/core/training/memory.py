"""Out of memory: the restart with smaller micro-batches, as a small strategy the loop asks."""

from __future__ import annotations

import torch

from tlstudio.core.errors import OutOfMemoryError
from tlstudio.core.training.resolved import ResolvedRun


def is_out_of_memory(exc: BaseException) -> bool:
    """CUDA raises torch.OutOfMemoryError; Apple's MPS a RuntimeError that says so."""
    return isinstance(exc, torch.OutOfMemoryError) or (
        isinstance(exc, RuntimeError) and "out of memory" in str(exc).lower())


def shrink(run: ResolvedRun, exc: BaseException) -> str:
    """Twice the micro-batches (gradient accumulation: the same effective batch, so the same schedule and results,
    in half the activation memory); what to tell the user. One file at a time not fitting is a clear error."""
    config = run.config
    micro = run.micro_batch()
    if micro <= 1 or not run.together.can_restart:
        raise OutOfMemoryError(f"The {run.device} device ran out of memory even with {micro} file(s) per step.",
                               "Use a smaller backbone, fewer unfrozen blocks, or a device with more memory.") from exc
    config.accumulate = min(config.batch_size, config.accumulate * 2)
    return (f"Out of memory with {micro} files per step; starting again with {run.micro_batch()} files per step, "
            f"accumulated {config.accumulate} times: the same batch of {config.batch_size}. "
            f"--accumulate {config.accumulate} avoids the restart next time.")


def release(device: torch.device) -> None:
    """Give the freed memory back to the device before the fresh model arrives."""
    import gc

    gc.collect()
    if device.type == "cuda":
        torch.cuda.empty_cache()
