"""Checks that can fail: each notebook ends its training with one of these.

nbval compares no outputs of stripped notebooks, so an exception raised here is what makes
a chapter's test fail when its generator did not learn.
"""
import torch

from .data import ring_centres


def nearest_real_distance(samples: torch.Tensor, real: torch.Tensor, n_real: int = 2000) -> float:
    """Mean L2 distance (per pixel, RMS) from each sample to its nearest real image.

    Near 0 means every sample sits close to some real digit; noise or blobs sit far away.
    """
    a = samples.detach().flatten(1).float().cpu()
    b = real[:n_real].detach().flatten(1).float().cpu()
    return (torch.cdist(a, b).min(dim=1).values / a.shape[1] ** 0.5).mean().item()


def check_learned(before: torch.Tensor, after: torch.Tensor, real: torch.Tensor,
                  factor: float = 0.8) -> tuple[float, float]:
    """Raise unless the trained samples (`after`) sit nearer the real data than the
    untrained ones (`before`): distance(after) < factor * distance(before)."""
    d_before = nearest_real_distance(before, real)
    d_after = nearest_real_distance(after, real)
    print(f"distance to the nearest real image: untrained {d_before:.3f}, "
          f"trained {d_after:.3f} (must be below {factor * d_before:.3f})")
    if not d_after < factor * d_before:
        raise AssertionError(f"The generator did not learn: its samples are {d_after:.3f} "
                             f"from the data, untrained {d_before:.3f}.")
    return d_before, d_after


def modes_covered(points: torch.Tensor, modes: int = 8, radius: float = 2.0,
                  within: float = 0.25, min_share: float = 0.02) -> int:
    """How many ring modes hold at least `min_share` of the points within `within` of
    their centre: 8 is full coverage, 1 is complete mode collapse."""
    centres = ring_centres(modes, radius)
    d = torch.cdist(points.detach().float().cpu(), centres)          # (n, modes)
    nearest = d.argmin(dim=1)
    close = d.min(dim=1).values < within
    counts = torch.bincount(nearest[close], minlength=modes)
    return int((counts >= min_share * len(points)).sum())
