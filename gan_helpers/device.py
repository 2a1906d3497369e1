"""Pick the training device: `auto` means cuda, then mps, then cpu."""
import torch

from .errors import GanError


def _mps_available() -> bool:
    return getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available()


def resolve_device(name="auto") -> torch.device:
    """Turn 'auto' | 'cpu' | 'cuda' | 'mps' (or a torch.device) into an available device."""
    if isinstance(name, torch.device):
        name = str(name)
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        return torch.device("mps" if _mps_available() else "cpu")
    kind = name.split(":")[0]
    if kind == "cuda" and not torch.cuda.is_available():
        raise GanError("CUDA was asked for but this machine has no usable CUDA GPU; "
                       "use --device auto or --device cpu.")
    if kind == "mps" and not _mps_available():
        raise GanError("Apple MPS was asked for but is not available here; "
                       "use --device auto or --device cpu.")
    if kind not in ("cpu", "cuda", "mps"):
        raise GanError(f"Unknown device {name!r}; choose auto, cpu, cuda or mps.")
    return torch.device(name)
