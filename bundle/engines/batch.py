"""Moving collated batches to the device (MONAI's ``prepare_batch`` hook) and the model behind DDP."""

from __future__ import annotations

import torch

from bundle.data.batch import MediSeeBatch


def prepare_batch(
    batch: MediSeeBatch, device: torch.device | str | None = None, non_blocking: bool = False, **kwargs
) -> MediSeeBatch:
    """MONAI's ``prepare_batch`` hook for a :class:`bundle.data.batch.MediSeeBatch`: the batch on ``device``.

    (MONAI's default splits an image and a label out of a dict; MediSee's engines read the batch's fields.)

    Args:
        batch: a collated batch.
        device: where the model is.
        non_blocking: copy asynchronously (the engines set it: pinned loader memory overlaps the copy).
        **kwargs: ``Tensor.to`` arguments of the engine (``to_kwargs``).
    """
    return batch.to(device, non_blocking=non_blocking, **kwargs)


def unwrap(network: torch.nn.Module) -> torch.nn.Module:
    """The MediSee inside a DistributedDataParallel wrapper (or the network itself)."""
    return getattr(network, "module", network)
