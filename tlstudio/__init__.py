"""Transfer Learning Studio: a strong classifier from a folder of labelled images or sounds."""

import os as _os

__version__ = "0.1.0"

# Apple GPUs lack some kernels; PyTorch may then fall back to the CPU for them. PyTorch reads this once,
# when it is first imported, so it is set here: every entry point imports this package before torch.
_os.environ.setdefault("PYTORCH_ENABLE_MPS_FALLBACK", "1")
