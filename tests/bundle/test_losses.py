"""Losses (paper Eq. 4-5) against direct computations, with gradients where they must (and must not) flow."""

from __future__ import annotations

import math

import pytest
import torch

from bundle.data.batch import MediSeeBatch
from bundle.losses import BoxLoss, MaskLoss, MediSeeLoss, SimilarityLoss, image_token_states, similarity_map
from networks.medisee import MediSeeOutput
from tests.helpers.batches import make_batch

DICE_SMOOTH = 1e-5  # MONAI DiceLoss's default smooth_nr / smooth_dr


def _bce(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    p = torch.sigmoid(logits)
    return -(target * torch.log(p) + (1 - target) * torch.log(1 - p)).mean()


def _dice(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    p = torch.sigmoid(logits)
    return 1 - (2 * (p * target).sum() + DICE_SMOOTH) / (p.sum() + target.sum() + DICE_SMOOTH)


def _giou(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """GIoU of two xyxy boxes, written out."""
    inter_w = (torch.min(a[2], b[2]) - torch.max(a[0], b[0])).clamp(min=0)
    inter_h = (torch.min(a[3], b[3]) - torch.max(a[1], b[1])).clamp(min=0)
    inter = inter_w * inter_h
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    hull = (torch.max(a[2], b[2]) - torch.min(a[0], b[0])) * (torch.max(a[3], b[3]) - torch.min(a[1], b[1]))
    return inter / union - (hull - union) / hull


def _masks(sizes, seed=0):
    generator = torch.Generator().manual_seed(seed)
    logits = [torch.randn(*s, generator=generator, requires_grad=True) for s in sizes]
    targets = [(torch.rand(*s, generator=generator) > 0.5).float() for s in sizes]
    return logits, targets


# ---- MaskLoss ---------------------------------------------------------------------------------


def test_mask_loss_is_weighted_bce_plus_dice_per_mask_averaged_over_masks_of_different_sizes():
    logits, targets = _masks([(3, 4), (5, 2), (1, 7)])
    expected = torch.stack([2.0 * _bce(p, t) + 0.5 * _dice(p, t) for p, t in zip(logits, targets)]).mean()
    assert torch.allclose(MaskLoss()(logits, targets), expected, atol=1e-6)


def test_mask_loss_weights_are_the_constructor_arguments():
    logits, targets = _masks([(4, 4), (2, 6)], seed=1)
    bce = torch.stack([_bce(p, t) for p, t in zip(logits, targets)]).mean()
    dice = torch.stack([_dice(p, t) for p, t in zip(logits, targets)]).mean()
    assert torch.allclose(MaskLoss(bce_weight=1.0, dice_weight=0.0)(logits, targets), bce, atol=1e-6)
    assert torch.allclose(MaskLoss(bce_weight=0.0, dice_weight=3.0)(logits, targets), 3 * dice, atol=1e-6)


def test_mask_loss_on_a_batch_tensor_equals_the_list_of_its_masks():
    logits, targets = _masks([(6, 5)] * 3, seed=2)
    batched = MaskLoss()(torch.stack(logits), torch.stack(targets))
    assert torch.allclose(batched, MaskLoss()(logits, targets), atol=1e-6)


def test_mask_loss_reaches_every_mask_logit_and_is_lower_for_better_logits():
    logits, targets = _masks([(3, 3), (4, 2)], seed=3)
    MaskLoss()(logits, targets).backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in logits)
    confident = [(t * 2 - 1) * 10 for t in targets]
    assert MaskLoss()(confident, targets) < MaskLoss()([p.detach() for p in logits], targets)


def test_mask_loss_refuses_unpaired_masks():
    logits, targets = _masks([(3, 3), (4, 2)])
    with pytest.raises(ValueError, match="one target per predicted mask"):
        MaskLoss()(logits, targets[:1])


# ---- BoxLoss ----------------------------------------------------------------------------------


PRED = torch.tensor([[0.1, 0.1, 0.5, 0.5], [0.2, 0.3, 0.9, 0.8], [0.0, 0.0, 1.0, 1.0]])
TARGET = torch.tensor([[0.2, 0.2, 0.6, 0.7], [0.2, 0.3, 0.9, 0.8], [0.0, 0.0, 0.0, 0.0]])


def test_box_loss_is_weighted_l1_plus_one_minus_giou_averaged_over_rows():
    pred, target = PRED[:2], TARGET[:2]
    l1 = (pred - target).abs().mean()
    giou = torch.stack([1 - _giou(p, t) for p, t in zip(pred, target)]).mean()
    assert torch.allclose(BoxLoss()(pred, target), l1 + giou, atol=1e-6)
    expected = 2.0 * (0.5 * l1 + 3.0 * giou)
    assert torch.allclose(BoxLoss(weight=2.0, l1_weight=0.5, giou_weight=3.0)(pred, target), expected, atol=1e-6)


def test_box_loss_ignores_rows_without_a_ground_truth_box():
    valid = torch.tensor([True, True, False])
    assert torch.allclose(BoxLoss()(PRED, TARGET, valid), BoxLoss()(PRED[:2], TARGET[:2]), atol=1e-6)
    pred = PRED.clone().requires_grad_(True)
    BoxLoss()(pred, TARGET, valid).backward()
    assert pred.grad[:2].abs().sum() > 0 and torch.equal(pred.grad[2], torch.zeros(4))


def test_box_loss_without_valid_rows_is_a_zero_that_still_back_propagates():
    pred = PRED.clone().requires_grad_(True)
    loss = BoxLoss()(pred, TARGET, torch.zeros(3, dtype=torch.bool))
    assert loss.item() == 0.0 and loss.requires_grad
    loss.backward()
    assert torch.equal(pred.grad, torch.zeros_like(pred))


def test_box_loss_is_zero_for_a_perfect_box_and_grows_as_the_box_moves_away():
    target = TARGET[:1]
    shifts = [0.0, 0.05, 0.2]
    losses = [BoxLoss()(target + s, target).item() for s in shifts]
    assert losses[0] == pytest.approx(0.0, abs=1e-6) and losses[0] < losses[1] < losses[2]


# ---- MediSeeLoss ------------------------------------------------------------------------------


def _targets(masks, boxes, box_valid) -> MediSeeBatch:
    """A batch holding only what the loss reads: the targets of each row (model inputs of length 0)."""
    rows = len(masks)
    no_tokens = torch.zeros(rows, 0, dtype=torch.long)
    return MediSeeBatch(
        input_ids=no_tokens,
        attention_mask=no_tokens,
        labels=no_tokens,
        clip_pixel_values=torch.zeros(0),
        sam_pixel_values=torch.zeros(0),
        image_index=torch.arange(rows),
        original_sizes=torch.tensor([list(m.shape) for m in masks]),
        masks=masks,
        boxes=boxes,
        box_valid=box_valid,
    )


def _output(mask_logits, boxes, lm_loss):
    rows, hidden = len(mask_logits), 4
    zeros = torch.zeros(rows, 1)
    return MediSeeOutput(
        low_res_masks=zeros,
        sam_mask_logits=zeros,
        mask_logits=mask_logits,
        boxes_cxcywh=boxes,
        boxes_xyxy=boxes,
        iou_predictions=zeros,
        lm_loss=lm_loss,
        candidate_states=torch.zeros(rows, 2, hidden),
        seg_state=torch.zeros(rows, hidden),
        det_state=torch.zeros(rows, hidden),
        seg_weights=zeros,
        det_weights=zeros,
    )


def test_medisee_loss_sums_weighted_text_mask_and_box_terms():
    logits, targets = _masks([(3, 4), (5, 2), (2, 2)], seed=4)
    valid = torch.tensor([True, False, True])
    batch = _targets(targets, TARGET, valid)
    lm = torch.tensor(1.25)
    terms = MediSeeLoss(text_weight=0.5)(_output(logits, PRED, lm), batch)
    mask, box = MaskLoss()(logits, targets), BoxLoss()(PRED, TARGET, valid)
    assert torch.allclose(terms["mask"], mask) and torch.allclose(terms["box"], box)
    assert torch.allclose(terms["text"], lm)
    assert torch.allclose(terms["loss"], 0.5 * lm + mask + box)


def test_medisee_loss_without_labels_has_a_zero_text_term():
    logits, targets = _masks([(3, 4)], seed=5)
    batch = _targets(targets, TARGET[:1], torch.tensor([True]))
    terms = MediSeeLoss()(_output(logits, PRED[:1], None), batch)
    assert terms["text"].item() == 0.0
    assert torch.allclose(terms["loss"], terms["mask"] + terms["box"])


def test_medisee_loss_on_the_tiny_model_reaches_the_box_head_and_the_mask_decoder(tiny):
    model, tokenizer = tiny
    batch = make_batch(model, tokenizer)
    sizes = batch["original_sizes"].tolist()
    targets = [torch.zeros(h, w) for h, w in sizes]
    for target in targets:
        target[: target.shape[0] // 2, : target.shape[1] // 3] = 1.0
    boxes = torch.tensor([[0.0, 0.0, 1 / 3, 0.5]] * len(sizes))
    output = model(**batch)
    valid = torch.ones(len(sizes), dtype=torch.bool)
    terms = MediSeeLoss()(output, _targets(targets, boxes, valid))
    assert all(torch.isfinite(v) for v in terms.values())
    # autograd.grad leaves the shared fixture's .grad untouched
    params = [model.box_head.mlp[-1].weight, next(model.medsam.sam.mask_decoder.parameters())]
    grads = torch.autograd.grad(terms["loss"], params)
    assert all(g.abs().sum() > 0 for g in grads)


# ---- similarity loss (Eq. 5) ------------------------------------------------------------------


def test_image_token_states_gathers_each_rows_image_positions_in_order():
    image, hidden = 7, 3
    input_ids = torch.tensor([[1, image, image, 5, 2], [image, 4, image, 2, 2]])
    states = torch.arange(2 * 5 * hidden, dtype=torch.float32).reshape(2, 5, hidden)
    gathered = image_token_states(states, input_ids, image)
    assert torch.equal(gathered[0], states[0, [1, 2]]) and torch.equal(gathered[1], states[1, [0, 2]])


def test_image_token_states_refuses_rows_with_different_image_token_counts():
    with pytest.raises(ValueError, match="same, non-zero number of image tokens"):
        image_token_states(torch.zeros(2, 3, 4), torch.tensor([[7, 7, 1], [7, 1, 1]]), 7)


def test_similarity_map_is_the_dot_product_of_each_image_token_with_h_seg():
    states, h_seg = torch.randn(2, 5, 8), torch.randn(2, 8)
    expected = torch.tensor([[float(states[b, t] @ h_seg[b]) for t in range(5)] for b in range(2)])
    assert torch.allclose(similarity_map(states, h_seg), expected, atol=1e-5)


def _js(p: torch.Tensor, q: torch.Tensor) -> torch.Tensor:
    m = (p + q) / 2
    return 0.5 * (p * (p / m).log()).sum(-1) + 0.5 * (q * (q / m).log()).sum(-1)


def _min_max(x: torch.Tensor) -> torch.Tensor:
    return (x - x.min(-1, keepdim=True).values) / (x.max(-1, keepdim=True).values - x.min(-1, keepdim=True).values)


def test_similarity_loss_is_weighted_js_of_scaled_softmaxes_plus_mse_of_min_max_maps():
    generator = torch.Generator().manual_seed(0)
    hidden = 16
    shapes = [(3, 6, hidden), (3, hidden)] * 2
    states, h_seg, label_states, label_h = (torch.randn(*s, generator=generator) for s in shapes)
    sim, target = similarity_map(states, h_seg), similarity_map(label_states, label_h)
    scale = 1 / math.sqrt(hidden)
    js = _js(torch.softmax(sim * scale, -1), torch.softmax(target * scale, -1)).mean()
    mse = ((_min_max(sim) - _min_max(target)) ** 2).mean()
    loss = SimilarityLoss()(states, h_seg, label_states, label_h)
    assert torch.allclose(loss, 2.0 * js + 1.0 * mse, atol=1e-5)
    loss = SimilarityLoss(js_weight=1.0, mse_weight=0.0, scale=0.5)(states, h_seg, label_states, label_h)
    assert torch.allclose(loss, _js(torch.softmax(sim * 0.5, -1), torch.softmax(target * 0.5, -1)).mean(), atol=1e-5)


def test_similarity_loss_is_zero_when_the_maps_agree():
    states, h_seg = torch.randn(2, 9, 32), torch.randn(2, 32)
    assert SimilarityLoss()(states, h_seg, states.clone(), h_seg.clone()).item() == pytest.approx(0.0, abs=1e-6)


def test_similarity_loss_is_positive_and_finite_on_llm_sized_states():
    # 4096-wide states with norms in the hundreds: raw dot products ~1e4 (an unscaled softmax would be one-hot)
    generator = torch.Generator().manual_seed(1)
    states, label_states = (10 * torch.randn(2, 576, 4096, generator=generator) for _ in range(2))
    h_seg, label_h = (10 * torch.randn(2, 4096, generator=generator) for _ in range(2))
    loss = SimilarityLoss()(states, h_seg, label_states, label_h)
    assert torch.isfinite(loss) and loss.item() > 0
    # both terms are bounded: JS by ln 2, min-max MSE by 1
    assert loss.item() <= 2.0 * math.log(2.0) + 1.0


def test_similarity_loss_mse_term_ignores_the_scale_of_the_label_map():
    states, h_seg, label_states, label_h = (torch.randn(*s) for s in [(2, 7, 8), (2, 8)] * 2)
    mse_only = SimilarityLoss(js_weight=0.0, mse_weight=1.0)
    loss = mse_only(states, h_seg, label_states, label_h)
    assert torch.allclose(loss, mse_only(states, h_seg, label_states, 50 * label_h), atol=1e-5)
    assert loss.item() > 0


def test_similarity_loss_trains_only_the_reasoning_branch():
    states, h_seg = torch.randn(2, 5, 8, requires_grad=True), torch.randn(2, 8, requires_grad=True)
    label_states, label_h = torch.randn(2, 5, 8, requires_grad=True), torch.randn(2, 8, requires_grad=True)
    SimilarityLoss()(states, h_seg, label_states, label_h).backward()
    assert states.grad.abs().sum() > 0 and h_seg.grad.abs().sum() > 0
    assert label_states.grad is None and label_h.grad is None


def test_similarity_loss_on_the_tiny_models_hidden_states_is_finite(tiny):
    model, tokenizer = tiny
    batch = make_batch(model, tokenizer)
    with torch.no_grad():
        output = model(**batch, output_hidden_states=True)
    states = image_token_states(output.last_hidden_state, batch["input_ids"], model.image_token_id)
    assert states.shape == (3, model.num_image_tokens, output.seg_state.shape[-1])
    loss = SimilarityLoss()(states[:2], output.seg_state[:2], states[1:], output.seg_state[1:])
    assert torch.isfinite(loss) and loss.item() > 0


def test_a_box_l1_weight_of_4_is_detrs_per_box_sum():
    pred, target = PRED[:2], TARGET[:2]
    per_box_sum = (pred - target).abs().sum(dim=1).mean()
    giou = torch.stack([1 - _giou(p, t) for p, t in zip(pred, target)]).mean()
    assert torch.allclose(BoxLoss(l1_weight=4.0)(pred, target), per_box_sum + giou, atol=1e-6)


def test_similarity_loss_can_take_the_mse_on_the_raw_maps():
    states, h_seg, label_states, label_h = (torch.randn(*s) for s in [(2, 7, 8), (2, 8)] * 2)
    raw = SimilarityLoss(js_weight=0.0, mse_weight=1.0, min_max=False)(states, h_seg, label_states, label_h)
    expected = ((similarity_map(states, h_seg) - similarity_map(label_states, label_h)) ** 2).mean()
    assert torch.allclose(raw, expected, atol=1e-5)
    assert not torch.allclose(raw, SimilarityLoss(js_weight=0.0)(states, h_seg, label_states, label_h))
