"""A tiny training batch with targets and a CPU trainer over given batches (engine-level tests)."""

from __future__ import annotations

import torch

from bundle.engines import MediSeeTrainer
from bundle.losses import MediSeeLoss
from tests.helpers.batches import make_batch


def batch_with_targets(model, tokenizer) -> dict:
    """A tiny batch of three rows, each with a mask in its top-left corner and the matching box."""
    batch = make_batch(model, tokenizer)
    rows = len(batch["input_ids"])
    batch["image_index"] = torch.arange(rows)
    batch["masks"] = [torch.zeros(h, w) for h, w in batch["original_sizes"].tolist()]
    for mask in batch["masks"]:
        mask[: mask.shape[0] // 2, : mask.shape[1] // 3] = 1.0
    batch["boxes"] = torch.tensor([[0.0, 0.0, 1 / 3, 0.5]] * rows)
    batch["box_valid"] = torch.ones(rows, dtype=torch.bool)
    return batch


def tiny_trainer(model, batches: list[dict], lr: float = 1e-3, max_epochs: int = 1, **kwargs) -> MediSeeTrainer:
    """A CPU trainer over ``batches`` with AdamW on the trainable set (``kwargs``: more trainer arguments)."""
    return MediSeeTrainer(
        device=torch.device("cpu"),
        max_epochs=max_epochs,
        train_data_loader=batches,
        network=model,
        optimizer=torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=lr),
        loss_function=MediSeeLoss(),
        **kwargs,
    )
