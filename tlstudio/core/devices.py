"""Which compute devices exist, and which one a run uses: CUDA > Apple MPS > CPU unless told."""

from __future__ import annotations

from dataclasses import dataclass

from tlstudio.core.errors import ConfigError


@dataclass(frozen=True)
class DeviceInfo:
    id: str  # "cuda:0", "mps", "cpu"
    name: str
    memory_gb: float | None = None

    def describe(self) -> str:
        memory = f", {self.memory_gb:.0f} GB" if self.memory_gb else ""
        return f"{self.id} ({self.name}{memory})"


def available() -> list[DeviceInfo]:
    import platform

    import torch

    found: list[DeviceInfo] = []
    if torch.cuda.is_available():
        for index in range(torch.cuda.device_count()):
            props = torch.cuda.get_device_properties(index)
            found.append(DeviceInfo(f"cuda:{index}", props.name, props.total_memory / 2**30))
    if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
        found.append(DeviceInfo("mps", "Apple GPU"))
    found.append(DeviceInfo("cpu", platform.processor() or platform.machine() or "CPU"))
    return found


def resolve(preference: str = "auto") -> str:
    """'auto' -> the best available; anything else must exist."""
    devices = available()
    if preference in ("auto", ""):
        return devices[0].id
    wanted = "cuda:0" if preference == "cuda" else preference
    if any(device.id == wanted for device in devices):
        return wanted
    names = ", ".join(device.id for device in devices)
    raise ConfigError(f"The device '{preference}' is not available here.", f"Available: {names}.")
