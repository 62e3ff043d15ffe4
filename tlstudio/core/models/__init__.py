"""Backbones (catalogue, sound encoders), weights, freezing and the transfer model.

Importing the package registers every backbone (see registry.py); nothing here imports torch.
"""

from tlstudio.core.models import audio_encoders, catalogue, yamnet_entry  # noqa: F401  (they register themselves)
