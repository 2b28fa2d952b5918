"""Moving collated batches to the device, picking the model's inputs out of them, and the model behind DDP."""

from __future__ import annotations

import torch

MODEL_INPUTS = (
    "input_ids",
    "attention_mask",
    "labels",
    "clip_pixel_values",
    "sam_pixel_values",
    "image_index",
    "original_sizes",
)
LABEL_QUERY_PREFIX = "label_"  # the plain label query of each row (fine-tuning with L_sim)


def prepare_batch(batch: dict, device: torch.device | str | None = None, non_blocking: bool = False, **kwargs) -> dict:
    """MONAI's ``prepare_batch`` hook for a collated MediSee batch: the same dict, its tensors (and lists of
    tensors) on ``device``. (MONAI's default splits an image and a label out of it; MediSee's engines read
    the batch's fields by name.)

    Args:
        batch: a collated batch.
        device: where the model is.
        non_blocking: copy asynchronously (the engines set it: pinned loader memory overlaps the copy).
        **kwargs: ``Tensor.to`` arguments of the engine (``to_kwargs``).
    """

    def move(value):
        if isinstance(value, torch.Tensor):
            return value.to(device, non_blocking=non_blocking, **kwargs)
        if isinstance(value, list) and value and isinstance(value[0], torch.Tensor):
            return [v.to(device, non_blocking=non_blocking, **kwargs) for v in value]
        return value

    return {key: move(value) for key, value in batch.items()}


def model_inputs(batch: dict, prefix: str = "", targets: bool = True) -> dict:
    """The keyword arguments of ``MediSee.forward`` beside the SAM image embeddings, which the engines compute
    (:func:`bundle.engines.sam_cache.image_embeddings`) and pass themselves.

    Args:
        batch: a collated batch.
        prefix: picks the label-query token ids (:data:`LABEL_QUERY_PREFIX`) instead of the question's.
        targets: include the text ``labels`` (for the cross-entropy); False for a forward pass without loss.
    """
    left_out = {"sam_pixel_values"} | (set() if targets else {"labels"})
    inputs = {key: batch[key] for key in MODEL_INPUTS if key in batch and key not in left_out}
    for key in ("input_ids", "attention_mask", "labels"):
        if prefix and f"{prefix}{key}" in batch and key not in left_out:
            inputs[key] = batch[f"{prefix}{key}"]
    return inputs


def unwrap(network: torch.nn.Module) -> torch.nn.Module:
    """The MediSee inside a DistributedDataParallel wrapper (or the network itself)."""
    return getattr(network, "module", network)
