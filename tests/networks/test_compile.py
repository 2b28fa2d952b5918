"""``networks.compile_network``: the ``compile`` setting compiles MediSee's parts in place without changing results.

Equality runs through dynamo with the cheap ``aot_eager`` backend (traced and functionalised by
AOTAutograd, no code generation); the real ``inductor`` backend runs end to end in
``tests/bundle/test_inference_levers.py``.
"""

from __future__ import annotations

import pytest
import torch
from torch._dynamo.testing import CompileCounterWithBackend

from bundle.inference.inferer import slice_batch
from bundle.prompts import PromptBuilder
from common.errors import ConfigError, root_cause
from networks import compile_network
from networks.compile import COMPILE_PARTS, is_compiled
from tests.helpers.tiny import build_tiny, tiny_parser

CHEAP_BACKEND = "aot_eager"
BATCHES = (8, 3)
"""A full batch, then a smaller last one (dynamo recompiles once with a symbolic batch size)."""
SLICE_SHAPE = (1, 40, 52)
QUERY = "Where is the liver?"
ATOL = 1e-5


@pytest.fixture(autouse=True)
def fresh_dynamo():
    """Compiled code is cached per function across models: each test starts and ends without any."""
    torch.compiler.reset()
    yield
    torch.compiler.reset()


def forward_outputs(model, tokenizer) -> list[tuple[list[torch.Tensor], torch.Tensor]]:
    """(mask logits, boxes) of each batch of :data:`BATCHES`, on fixed random slices."""
    generator = torch.Generator().manual_seed(0)
    conversation = PromptBuilder.for_model(tokenizer, model).inference_example(QUERY)
    outputs = []
    with torch.no_grad():
        for rows in BATCHES:
            images = [torch.rand(SLICE_SHAPE, generator=generator) for _ in range(rows)]
            out = model(**slice_batch(model, images, conversation, tokenizer.pad_token_id).model_inputs(targets=False))
            outputs.append((out.mask_logits, out.boxes_xyxy))
    return outputs


def test_compiled_parts_give_the_outputs_and_state_of_the_eager_model():
    model, tokenizer = build_tiny()
    model.eval()
    expected = forward_outputs(model, tokenizer)
    state = {k: v.clone() for k, v in model.state_dict().items()}
    counter = CompileCounterWithBackend(CHEAP_BACKEND)

    assert compile_network(model, "all", counter) is model
    found = forward_outputs(model, tokenizer)

    assert counter.frame_count >= len(COMPILE_PARTS["all"]), "every compiled part ran as a dynamo graph"
    for (masks, boxes), (ref_masks, ref_boxes) in zip(found, expected):
        torch.testing.assert_close(boxes, ref_boxes, atol=ATOL, rtol=0)
        for mask, ref in zip(masks, ref_masks, strict=True):
            torch.testing.assert_close(mask, ref, atol=ATOL, rtol=0)
    assert list(model.state_dict()) == list(state), "in-place compilation keeps the state_dict keys"
    assert all(torch.equal(model.state_dict()[k], v) for k, v in state.items())


@pytest.mark.parametrize("value", ["none", "sam", "llm", "all", "SAM", None])
def test_each_value_compiles_exactly_its_parts(value):
    model, _ = build_tiny()
    compile_network(model, value, CHEAP_BACKEND)
    compiled = {name for name, module in model.named_modules() if is_compiled(module)}
    assert compiled == set(COMPILE_PARTS[str(value).lower()])


@pytest.mark.parametrize("value", ["fast", "true", "", "sam,llm"])
def test_an_unknown_value_is_a_config_error_naming_compile_and_the_choices(value):
    model, _ = build_tiny()
    with pytest.raises(ConfigError) as raised:
        compile_network(model, value)
    assert str(raised.value) == f"config 'compile' must be one of none, sam, llm, all, got {value!r}"
    assert not any(is_compiled(module) for module in model.modules())


def test_an_unknown_backend_is_a_config_error_naming_compile_backend():
    model, _ = build_tiny()
    with pytest.raises(ConfigError, match=r"config 'compile_backend' must be a torch.compile backend .*'tensorrtx'"):
        compile_network(model, "sam", "tensorrtx")
    assert not any(is_compiled(module) for module in model.modules())


def test_the_config_network_is_compiled_as_the_compile_id_says():
    parser = tiny_parser(compile="sam", compile_backend=CHEAP_BACKEND)
    network = parser.get_parsed_content("network")
    assert is_compiled(network.medsam.sam.image_encoder) and not is_compiled(network.llava.model.language_model)
    bad = tiny_parser(compile="everything")
    with pytest.raises(Exception) as raised:
        bad.get_parsed_content("network")
    assert "config 'compile' must be one of none, sam, llm, all" in str(root_cause(raised.value))
