"""Phantoms -> NIfTI dataset -> collate -> MediSee: the data path the training config will use."""

from __future__ import annotations

import json

import torch
from torch.utils.data import DataLoader

from bundle.data import MediSeeCollate, NiftiSliceDataset
from bundle.prompts import PromptBuilder
from tests.helpers.phantoms import PHANTOM_SHAPE


def test_phantom_slices_carry_targets_with_their_names_and_pools(phantom_dataset):
    description = json.loads((phantom_dataset / "dataset.json").read_text())
    data = NiftiSliceDataset(phantom_dataset, split="training", mode="eval", min_target_pixels=4)
    names = set(description["labels"].values()) - {"background"}
    kinds = {}
    for i in range(len(data)):
        for target in data[i]["targets"]:
            assert target.class_name in names and int(target.mask.sum()) >= 4
            kinds.setdefault(target.query.kind, 0)
            kinds[target.query.kind] += 1
    assert set(kinds) == {"label", "short", "long"}


def test_patient_left_stays_left_through_loading_and_slicing(phantom_dataset):
    # RAS arrays: index along axis 0 grows toward the patient's right
    data = NiftiSliceDataset(phantom_dataset, split="training", max_targets=20, kind_weights={"label": 1.0})
    checked = 0
    for i in range(len(data)):
        sample = data[i]
        masks = {t.class_name: t.mask for t in sample["targets"]}
        if {"left kidney", "right kidney"} <= set(masks):
            rows = {name: masks[name].nonzero()[:, 0].float().mean() for name in ("left kidney", "right kidney")}
            assert rows["left kidney"] < rows["right kidney"], sample["source"]
            checked += 1
    assert checked > 0


def test_a_loader_batch_runs_through_the_tiny_model(phantom_dataset, tiny):
    model, tokenizer = tiny
    data = NiftiSliceDataset(phantom_dataset, split="training", max_targets=2, seed=3)
    collate = MediSeeCollate(
        PromptBuilder.for_model(tokenizer, model), model.llava.config.vision_config.image_size, model.medsam.image_size
    )
    batch = next(
        iter(
            DataLoader(data, batch_size=3, shuffle=True, collate_fn=collate, generator=torch.Generator().manual_seed(0))
        )
    )
    with torch.no_grad():
        out = model(**batch.model_inputs())
    assert len(out.mask_logits) == len(batch.masks) and torch.isfinite(out.lm_loss)
    assert all(m.shape == (PHANTOM_SHAPE[0], PHANTOM_SHAPE[1]) for m in out.mask_logits)
