"""The precision policy: the config's ``dtype`` sets storage and autocast for every engine."""

from __future__ import annotations

import pytest
import torch

from bundle.engines.precision import autocast, autocast_kwargs, uses_autocast
from common.errors import ConfigError
from networks.trainable import upcast_trainable
from tests.helpers.tiny import build_tiny, tiny_parser
from tests.helpers.training import batch_with_targets, tiny_trainer

SMALL_LR = 1e-5
"""An AdamW step this small is below bf16's resolution for weights of the box head's size (~0.05)."""


@pytest.mark.parametrize(("dtype", "amp"), [("float32", False), ("bfloat16", True), ("float16", True)])
def test_low_precision_storage_turns_autocast_on_in_the_same_dtype(dtype, amp):
    assert uses_autocast(dtype) is amp
    assert autocast_kwargs(dtype) == ({"dtype": getattr(torch, dtype)} if amp else {})


def test_an_unknown_dtype_is_refused_naming_the_key():
    with pytest.raises(ConfigError, match="'dtype'"):
        uses_autocast("fp8")


def test_autocast_runs_on_the_given_device_and_only_when_on():
    with autocast("cpu", True, {"dtype": torch.bfloat16}):
        assert (torch.ones(2, 2) @ torch.ones(2, 2)).dtype == torch.bfloat16
    with autocast("cpu", False, {"dtype": torch.bfloat16}):
        assert (torch.ones(2, 2) @ torch.ones(2, 2)).dtype == torch.float32


def test_the_inference_config_derives_amp_from_dtype():
    assert tiny_parser(dtype="bfloat16").get_parsed_content("evaluator#amp") is True
    assert tiny_parser(dtype="bfloat16").get_parsed_content("evaluator#amp_kwargs") == {"dtype": torch.bfloat16}
    assert tiny_parser().get_parsed_content("evaluator#amp") is False  # tiny.json: float32


def _box_head_fraction_changed(master_weights: bool) -> float:
    """One bf16-autocast training step at a small learning rate; the share of box-head weights it moved."""
    model, tokenizer = build_tiny(dtype="bfloat16")
    if master_weights:
        upcast_trainable(model, "float32")
    head = model.box_head
    before = [p.detach().clone() for p in head.parameters()]
    trainer = tiny_trainer(
        model, [batch_with_targets(model, tokenizer)], lr=SMALL_LR, amp=True, amp_kwargs=autocast_kwargs("bfloat16")
    )
    trainer.run()
    assert torch.isfinite(torch.tensor(trainer.state.output["loss"]))
    moved = sum(int((a != b).sum()) for a, b in zip(before, head.parameters()))
    return moved / sum(p.numel() for p in head.parameters())


def test_float32_master_weights_keep_the_small_updates_that_bf16_storage_rounds_away():
    assert _box_head_fraction_changed(master_weights=True) > 0.9
    assert _box_head_fraction_changed(master_weights=False) < 0.5
