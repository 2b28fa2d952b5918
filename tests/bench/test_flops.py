"""The FLOP count of the benchmarks against torch's own FLOP counter on the tiny model."""

from __future__ import annotations

import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode

from bench.flops import slice_flops
from bundle.inference.inferer import slice_batch
from bundle.prompts import PromptBuilder
from tests.helpers.tiny import build_tiny, tiny_parser

CONFIG_KEYS = ("text_config", "vision_config", "sam_config", "medisee_config")


@pytest.mark.parametrize(
    "overrides",
    [{}, {"medisee_config#candidate_tokens": ["[SEG]", "[BBOX]", "[C3]"], "medisee_config#use_box_prompt": False}],
    ids=["defaults", "three-candidates-no-box-prompt"],
)
def test_count_equals_torch_flop_counter_on_one_slice(overrides):
    model, tokenizer = build_tiny(**overrides)
    model.eval().llava.set_attn_implementation("eager")  # the counter sees eager attention as matmuls on CPU
    parser = tiny_parser(**overrides)
    config = {key: parser.get_parsed_content(key) for key in CONFIG_KEYS}
    conversation = PromptBuilder.for_model(tokenizer, model).inference_example("Where is the liver?")
    batch = slice_batch(model, [torch.rand(1, 40, 52)], conversation, tokenizer.pad_token_id)
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        model(**batch.model_inputs(targets=False))
    assert sum(slice_flops(config, batch.input_ids.shape[1]).values()) == counter.get_total_flops()
