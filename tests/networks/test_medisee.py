"""Forward contract of MediSee on the tiny preset: shapes, ranges, padding, gradients, ablations."""

from __future__ import annotations

import pytest
import torch
from monai.data.box_utils import convert_box_mode

from networks import InputError
from networks.trainable import is_trainable_name
from tests.helpers.batches import make_batch, select_rows
from tests.helpers.tiny import build_tiny


@pytest.fixture(scope="module")
def output(tiny):
    model, tokenizer = tiny
    batch = make_batch(model, tokenizer)
    with torch.no_grad():
        return batch, model(**batch)


def test_outputs_have_documented_shapes_and_ranges(tiny, output):
    model, _ = tiny
    batch, out = output
    n, hidden, side = len(batch["input_ids"]), model.llava.config.text_config.hidden_size, model.medsam.image_size
    assert out.sam_mask_logits.shape == (n, side, side)
    assert [tuple(m.shape) for m in out.mask_logits] == [tuple(s) for s in batch["original_sizes"].tolist()]
    assert out.boxes_cxcywh.shape == out.boxes_xyxy.shape == (n, 4)
    assert bool(((out.boxes_cxcywh >= 0) & (out.boxes_cxcywh <= 1)).all())
    assert torch.allclose(out.boxes_xyxy, convert_box_mode(out.boxes_cxcywh, src_mode="ccwh", dst_mode="xyxy"))
    assert out.candidate_states.shape == (n, model.config.num_candidates, hidden)
    assert out.seg_state.shape == out.det_state.shape == (n, hidden)
    assert out.lm_loss is not None and torch.isfinite(out.lm_loss)
    assert out.last_hidden_state is None


def test_lm_loss_only_when_labels_are_given(tiny):
    model, tokenizer = tiny
    batch = make_batch(model, tokenizer)
    batch.pop("labels")
    with torch.no_grad():
        assert model(**batch).lm_loss is None


def test_untrained_box_head_predicts_centred_half_box(output):
    _, out = output
    assert torch.allclose(out.boxes_cxcywh, torch.full_like(out.boxes_cxcywh, 0.5))
    assert torch.allclose(out.boxes_xyxy[0], torch.tensor([0.25, 0.25, 0.75, 0.75]))


def test_router_weights_sum_to_one(output):
    _, out = output
    for weights in (out.seg_weights, out.det_weights):
        assert torch.allclose(weights.sum(dim=1), torch.ones(len(weights)))
        assert bool((weights > 0).all())


def test_candidate_states_are_the_states_before_each_candidate_token(tiny):
    model, tokenizer = tiny
    batch = make_batch(model, tokenizer, padding_side="left")
    with torch.no_grad():
        out = model(**batch, output_hidden_states=True)
    for row, ids in enumerate(batch["input_ids"].tolist()):
        for k, token in enumerate(model.candidate_token_ids):
            before = ids.index(token) - 1
            assert torch.equal(out.candidate_states[row, k], out.last_hidden_state[row, before])


@pytest.mark.parametrize("padding_side", ["right", "left"])
def test_a_row_gives_the_same_result_alone_and_in_a_padded_batch(tiny, padding_side):
    model, tokenizer = tiny
    batch = make_batch(model, tokenizer, padding_side=padding_side)
    with torch.no_grad():
        full = model(**batch)
        for row in range(len(batch["input_ids"])):
            alone = model(**select_rows(batch, [row]))
            assert torch.allclose(full.candidate_states[row], alone.candidate_states[0], atol=1e-5)
            assert torch.allclose(full.boxes_xyxy[row], alone.boxes_xyxy[0], atol=1e-5)
            assert torch.allclose(full.mask_logits[row], alone.mask_logits[0], atol=1e-4)


def test_rows_sharing_an_image_match_rows_with_copies_of_it(tiny):
    model, tokenizer = tiny
    batch = make_batch(model, tokenizer)
    shared = dict(batch)
    shared["clip_pixel_values"] = batch["clip_pixel_values"][:1]
    shared["sam_pixel_values"] = batch["sam_pixel_values"][:1]
    shared["image_index"] = torch.zeros(len(batch["input_ids"]), dtype=torch.long)
    copied = dict(batch)
    copied["clip_pixel_values"] = batch["clip_pixel_values"][:1].expand_as(batch["clip_pixel_values"]).clone()
    copied["sam_pixel_values"] = batch["sam_pixel_values"][:1].expand_as(batch["sam_pixel_values"]).clone()
    with torch.no_grad():
        a, b = model(**shared), model(**copied)
    assert torch.allclose(a.sam_mask_logits, b.sam_mask_logits, atol=1e-4)
    assert torch.allclose(a.candidate_states, b.candidate_states, atol=1e-5)


def test_the_forward_keeps_no_key_value_cache(tiny):
    """One teacher-forced pass needs no cache; one would hold every layer's keys and values to the end."""
    model, tokenizer = tiny
    caches = []
    hook = model.llava.model.language_model.register_forward_hook(
        lambda module, args, out: caches.append(out.past_key_values)
    )
    try:
        with torch.no_grad():
            model(**make_batch(model, tokenizer))
    finally:
        hook.remove()
    assert caches == [None]


def test_precomputed_sam_embeddings_give_the_same_masks(tiny):
    model, tokenizer = tiny
    batch = make_batch(model, tokenizer)
    with torch.no_grad():
        direct = model(**batch)
        batch["sam_image_embeddings"] = model.medsam.encode_images(batch.pop("sam_pixel_values"))
        cached = model(**batch)
    assert torch.allclose(direct.sam_mask_logits, cached.sam_mask_logits)


def test_gradients_reach_exactly_the_trainable_set():
    model, tokenizer = build_tiny(seed=1)
    model.train()
    out = model(**make_batch(model, tokenizer))
    loss = out.lm_loss + out.sam_mask_logits.sigmoid().mean() + out.boxes_xyxy.sum()
    loss.backward()
    params = dict(model.named_parameters())
    trainable = {n for n, p in params.items() if p.requires_grad}
    assert trainable == {n for n in params if is_trainable_name(n)}
    assert {n for n, p in params.items() if p.grad is not None} == trainable
    # nothing frozen moved into the trainable set by accident
    assert not any(n.startswith(("llava.model.vision_tower.", "medsam.sam.image_encoder.")) for n in trainable)


def test_the_box_prompt_passes_gradients_to_the_box_head():
    model, tokenizer = build_tiny(seed=2)
    out = model(**make_batch(model, tokenizer))
    out.sam_mask_logits.sigmoid().mean().backward()
    assert model.box_head.mlp[-1].weight.grad.abs().sum() > 0


@pytest.mark.parametrize(
    "overrides",
    [
        {"medisee_config#candidate_tokens": ["[SEG]"]},
        {"medisee_config#candidate_tokens": ["[SEG]", "[BBOX]", "[CAND3]"]},
        {"medisee_config#fusion": "softmax"},
        {"medisee_config#fusion": "hard"},
        {"medisee_config#use_box_prompt": False},
        {"medisee_config#use_text_prompt": False},
        {"sam_config#resize": "longest_side"},
    ],
    ids=["n1", "n3", "softmax", "hard", "no-box-prompt", "no-text-prompt", "longest-side"],
)
def test_ablation_switches_build_and_run(overrides):
    model, tokenizer = build_tiny(**overrides)
    with torch.no_grad():
        out = model.eval()(**make_batch(model, tokenizer))
    n = model.config.num_candidates
    assert out.candidate_states.shape[1] == n
    assert torch.allclose(out.seg_weights.sum(dim=1), torch.ones(len(out.seg_weights)))
    if model.config.fusion == "hard":
        assert not any("router" in name for name, _ in model.named_parameters())
        assert bool((out.det_weights[:, -1] == 1).all()) and bool((out.seg_weights[:, 0] == 1).all())
    assert (model.text_projection is None) == (not model.config.use_text_prompt)


def test_a_row_without_its_candidate_token_is_rejected(tiny):
    model, tokenizer = tiny
    batch = make_batch(model, tokenizer)
    seg = model.candidate_token_ids[0]
    batch["input_ids"][1][batch["input_ids"][1] == seg] = tokenizer.unk_token_id
    with pytest.raises(InputError, match="row 1 holds candidate token 0"):
        model(**batch)


def test_a_row_with_the_wrong_number_of_image_tokens_is_rejected(tiny):
    model, tokenizer = tiny
    batch = make_batch(model, tokenizer)
    image = model.image_token_id
    first = (batch["input_ids"][0] == image).nonzero()[0, 0]
    batch["input_ids"][0, first] = tokenizer.unk_token_id
    with pytest.raises(InputError, match="row 0 has"):
        model(**batch)
