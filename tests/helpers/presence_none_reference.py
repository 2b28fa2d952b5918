"""Writes (or recomputes) the reference outputs of the tiny model without presence (the paper's setting).

``tests/data/presence_none_reference.pt`` was written by this script at commit 0eff691, before the
rejection token existed (``python tests/helpers/presence_none_reference.py OUT``). The test
``tests/networks/test_presence.py`` recomputes the same outputs with ``medisee_config#presence``
set to ``none`` and compares them, so the ablation keeps the paper's model exactly.
"""

from __future__ import annotations

import sys
from dataclasses import fields

import torch

from networks.config import MediSeeConfig
from tests.helpers.batches import make_batch
from tests.helpers.tiny import build_tiny

OUTPUT_FIELDS = ("boxes_xyxy", "candidate_states", "seg_weights", "det_weights", "iou_predictions")


def reference_outputs() -> dict:
    """The tiny model's (seed 0, eval mode) outputs on the helper batch, without presence."""
    overrides = {}
    if "presence" in {f.name for f in fields(MediSeeConfig)}:
        overrides["medisee_config#presence"] = "none"
    model, tokenizer = build_tiny(**overrides)
    model.eval()
    batch = make_batch(model, tokenizer)
    with torch.no_grad():
        out = model(**batch)
    result = {name: getattr(out, name).detach().clone() for name in OUTPUT_FIELDS}
    result["mask_logits"] = [m.detach().clone() for m in out.mask_logits]
    result["lm_loss"] = out.lm_loss.detach().clone()
    result["vocab_size"] = len(tokenizer)
    return result


if __name__ == "__main__":
    torch.save(reference_outputs(), sys.argv[1])
