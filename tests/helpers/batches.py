"""Padded model batches for network tests (the real prompt pipeline comes with the data issue)."""

from __future__ import annotations

import torch

QUESTIONS = [
    "Please segment and locate the liver in this image.",
    "Which organ here filters blood and makes urine? "
    "Please output segmentation mask and location bounding box, and explain why.",
    "Where is the spleen?",
]


def conversation_ids(model, tokenizer, question: str) -> list[int]:
    """Token ids of one Mistral-instruct conversation with the image tokens expanded.

    The answer names every candidate token of the model ("It is [SEG] and [BBOX].").
    """
    answer = "It is " + " and ".join(model.config.candidate_tokens) + "."
    image = tokenizer.convert_tokens_to_ids(model.config.image_token)
    head = tokenizer("[INST] ").input_ids
    tail = tokenizer("\n" + question + " [/INST] " + answer, add_special_tokens=False).input_ids
    return head + [image] * model.num_image_tokens + tail + [tokenizer.eos_token_id]


def make_batch(model, tokenizer, questions=QUESTIONS, padding_side: str = "right", seed: int = 0, sizes=None) -> dict:
    """A padded batch with random images; labels cover everything after the prompt's last token."""
    rows = [conversation_ids(model, tokenizer, q) for q in questions]
    length = max(map(len, rows))
    pad = tokenizer.pad_token_id
    ids = torch.full((len(rows), length), pad)
    mask = torch.zeros((len(rows), length), dtype=torch.long)
    for i, row in enumerate(rows):
        span = slice(length - len(row), length) if padding_side == "left" else slice(0, len(row))
        ids[i, span] = torch.tensor(row)
        mask[i, span] = 1
    labels = ids.masked_fill(mask == 0, -100)
    generator = torch.Generator().manual_seed(seed)
    clip_size = model.llava.config.vision_config.image_size
    sam_size = model.medsam.image_size
    batch = {
        "input_ids": ids,
        "attention_mask": mask,
        "labels": labels,
        "clip_pixel_values": torch.randn((len(rows), 3, clip_size, clip_size), generator=generator),
        "sam_pixel_values": torch.rand((len(rows), 3, sam_size, sam_size), generator=generator),
        "original_sizes": torch.tensor(sizes or [[96, 80], [64, 64], [50, 120]][: len(rows)]),
    }
    return batch


def select_rows(batch: dict, rows: list[int]) -> dict:
    """The sub-batch of ``rows``, with columns that are padding in every row removed."""
    out = {k: v[rows] for k, v in batch.items()}
    keep = out["attention_mask"].any(dim=0)
    for key in ("input_ids", "attention_mask", "labels"):
        out[key] = out[key][:, keep]
    return out
