"""A tiny training batch with targets and a CPU trainer over given batches (engine-level tests)."""

from __future__ import annotations

import dataclasses

import torch
from monai.handlers import LrScheduleHandler

from bundle.data.batch import MediSeeBatch
from bundle.engines import MediSeeTrainer, optimizer_steps, warmup_schedule
from bundle.losses import MediSeeLoss
from tests.helpers.batches import QUESTIONS, make_batch
from tests.helpers.tiny import build_tiny


def batch_with_targets(model, tokenizer) -> MediSeeBatch:
    """A tiny batch of three rows (one image each), each with a mask in its top-left corner and the matching box."""
    inputs = make_batch(model, tokenizer)
    rows = len(inputs["input_ids"])
    masks = [torch.zeros(h, w) for h, w in inputs["original_sizes"].tolist()]
    for mask in masks:
        mask[: mask.shape[0] // 2, : mask.shape[1] // 3] = 1.0
    return MediSeeBatch(
        **inputs,
        image_index=torch.arange(rows),
        masks=masks,
        boxes=torch.tensor([[0.0, 0.0, 1 / 3, 0.5]] * rows),
        box_valid=torch.ones(rows, dtype=torch.bool),
    )


def tiny_trainer(model, batches: list[MediSeeBatch], lr: float = 1e-3, max_epochs: int = 1, **kwargs) -> MediSeeTrainer:
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


ANSWER_TOKENS = 6
"""Labelled tokens per row in :func:`equal_count_batch`: the tail every row shares ("...[BBOX]." + eos)."""
MORE_QUESTIONS = [*QUESTIONS, "Please segment and locate the spleen in this image."]


def equal_count_batch(model, tokenizer, seed: int, dtype: torch.dtype = torch.float32) -> MediSeeBatch:
    """Four rows whose loss terms all average over the same count per row.

    Questions (so lengths and padding) differ, but every row has one mask, a valid box and exactly
    :data:`ANSWER_TOKENS` labelled answer tokens: any split into equal-size micro-batches then gives
    means over equal counts, and their mean is the whole batch's mean.
    """
    sizes = [[96, 80], [64, 64], [50, 120], [70, 70]]
    inputs = make_batch(model, tokenizer, questions=MORE_QUESTIONS, seed=seed, sizes=sizes)
    rows = len(MORE_QUESTIONS)
    generator = torch.Generator().manual_seed(seed)
    masks = [(torch.rand(h, w, generator=generator) > 0.5).to(dtype) for h, w in sizes]
    corner = torch.rand(rows, 2, generator=generator) * 0.5
    ends = inputs["attention_mask"].sum(dim=1, keepdim=True)
    positions = torch.arange(inputs["input_ids"].shape[1])[None]
    answer = (positions < ends) & (positions >= ends - ANSWER_TOKENS)
    inputs["labels"] = inputs["input_ids"].masked_fill(~answer, -100)
    for key in ("clip_pixel_values", "sam_pixel_values"):
        inputs[key] = inputs[key].to(dtype)
    return MediSeeBatch(
        **inputs,
        image_index=torch.arange(rows),
        masks=masks,
        boxes=torch.cat([corner, corner + 0.3], dim=1).to(dtype),
        box_valid=torch.ones(rows, dtype=torch.bool),
    )


def micro_batches(batch: MediSeeBatch, parts: int) -> list[MediSeeBatch]:
    """``batch`` (one image per row) cut into ``parts`` equal, consecutive row groups (columns that are all
    padding dropped)."""
    rows = len(batch)
    size = rows // parts
    assert size * parts == rows, "equal-size micro-batches only"
    out = []
    for start in range(0, rows, size):
        index = list(range(start, start + size))
        keep = batch.attention_mask[index].any(dim=0)
        rows_of = {}
        for item in dataclasses.fields(batch):
            value = getattr(batch, item.name)
            if isinstance(value, list) and value:
                rows_of[item.name] = [value[i] for i in index]
            elif isinstance(value, torch.Tensor):
                rows_of[item.name] = value[index]
        for name in ("input_ids", "attention_mask", "labels"):
            rows_of[name] = rows_of[name][:, keep]
        rows_of["image_index"] = torch.arange(size)  # rows of the part hold its own images
        out.append(dataclasses.replace(batch, **rows_of))
    return out


def deterministic_tiny(seed: int, dtype: torch.dtype = torch.float32, **overrides):
    """A tiny (model, tokenizer) without dropout, in ``dtype`` (float64 keeps SAM's float32 Fourier features)."""
    model, tokenizer = build_tiny(seed=seed, **overrides)
    for module in model.modules():
        if isinstance(module, torch.nn.Dropout):
            module.p = 0.0  # LoRA dropout would draw differently for a batch and its parts
    if dtype == torch.float64:
        model.double()
        model.medsam.sam.prompt_encoder.pe_layer.float()  # segment_anything casts box coordinates to float32
    return model, tokenizer


def scheduled_trainer(
    model, batches: list[MediSeeBatch], accumulation: int, grad_clip: float | None, lr: float, optimizer: str = "adamw"
) -> MediSeeTrainer:
    """A CPU trainer as train.json builds it: AdamW (betas 0.9/0.95, no decay) or plain SGD, the linear
    schedule (1 warm-up step, decaying to 0 one step after the run), ``accumulation`` micro-batches per step.

    SGD's step is proportional to the gradient, so it shows the gradient's scale, which AdamW's
    normalised step (and clipping) would hide.
    """
    params = [p for p in model.parameters() if p.requires_grad]
    if optimizer == "adamw":
        optimizer = torch.optim.AdamW(params, lr=lr, betas=(0.9, 0.95), weight_decay=0.0)
    else:
        optimizer = torch.optim.SGD(params, lr=lr)
    steps = optimizer_steps(batches, accumulation)
    schedule = warmup_schedule(optimizer, "linear", warmup_steps=1, total_steps=steps + 1)
    return MediSeeTrainer(
        device=torch.device("cpu"),
        max_epochs=1,
        train_data_loader=batches,
        network=model,
        optimizer=optimizer,
        loss_function=MediSeeLoss(),
        grad_clip=grad_clip,
        gradient_accumulation_steps=accumulation,
        train_handlers=[LrScheduleHandler(schedule, print_lr=False, epoch_level=False)],
    )


def trainable_weights(model) -> dict[str, torch.Tensor]:
    """Copies of the trainable parameters by name."""
    return {n: p.detach().clone() for n, p in model.named_parameters() if p.requires_grad}
