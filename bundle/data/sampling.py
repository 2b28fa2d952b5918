"""Mixing datasets at a fixed ratio (paper: SA-Med2D label data : MLMR-SD reasoning data = 7 : 3)."""

from __future__ import annotations

from collections.abc import Mapping

import torch
from torch.utils.data import ConcatDataset, Dataset, WeightedRandomSampler

from common.errors import ConfigError

DEFAULT_RATIOS = (7, 3)


def mixed_dataset(
    datasets: Mapping[str, Dataset], ratios: Mapping[str, float], num_samples: int | None = None, seed: int = 0
) -> tuple[ConcatDataset, WeightedRandomSampler]:
    """One dataset over several sources and a sampler drawing from them at the given ratios.

    Each sample of source k gets weight ratio_k / len(source_k), so a source's share of draws is
    its ratio regardless of its size.

    Args:
        datasets: source name -> dataset.
        ratios: source name -> relative share (e.g. ``{"samed2d": 7, "mlmrsd": 3}``).
        num_samples: draws per epoch (default: the total size).
        seed: sampler seed.
    """
    names = list(datasets)
    if set(ratios) != set(names):
        raise ConfigError(f"ratios must name exactly the datasets {names}, got {sorted(ratios)}")
    if any(ratios[n] < 0 for n in names) or not any(ratios[n] > 0 for n in names):
        raise ConfigError(f"ratios must be non-negative with a positive total, got {dict(ratios)}")
    empty = [n for n in names if len(datasets[n]) == 0 and ratios[n] > 0]
    if empty:
        raise ConfigError(f"datasets {empty} are empty but have a positive ratio")
    weights = torch.cat(
        [torch.full((len(datasets[n]),), ratios[n] / max(len(datasets[n]), 1), dtype=torch.double) for n in names]
    )
    concat = ConcatDataset([datasets[n] for n in names])
    generator = torch.Generator().manual_seed(seed)
    sampler = WeightedRandomSampler(weights, num_samples or len(concat), replacement=True, generator=generator)
    return concat, sampler
