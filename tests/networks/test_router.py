"""Routers R_s / R_d: fusion rules."""

import pytest
import torch

from networks.router import CandidateRouter


@pytest.mark.parametrize("fusion", ["normalized_sigmoid", "softmax", "hard"])
@pytest.mark.parametrize("n", [1, 2, 3])
def test_weights_sum_to_one_and_fuse_by_weighted_sum(fusion, n):
    torch.manual_seed(0)
    router = CandidateRouter(n, hidden_size=6, router_hidden_size=5, fusion=fusion, hard_index=-1)
    candidates = torch.randn(4, n, 6)
    fused, weights = router(candidates)
    assert torch.allclose(weights.sum(dim=1), torch.ones(4))
    assert torch.allclose(fused, (weights[..., None] * candidates).sum(dim=1))


def test_normalized_sigmoid_and_softmax_follow_their_definitions():
    torch.manual_seed(0)
    candidates = torch.randn(3, 2, 6)
    sig = CandidateRouter(2, 6, 5, "normalized_sigmoid")
    logits = sig.mlp(candidates.flatten(1))
    assert torch.allclose(sig.weights(candidates), logits.sigmoid() / logits.sigmoid().sum(1, keepdim=True))
    soft = CandidateRouter(2, 6, 5, "softmax")
    assert torch.allclose(soft.weights(candidates), soft.mlp(candidates.flatten(1)).softmax(1))


def test_hard_fusion_selects_one_candidate_without_parameters():
    router = CandidateRouter(3, 6, 5, "hard", hard_index=1)
    candidates = torch.randn(2, 3, 6)
    fused, _ = router(candidates)
    assert torch.equal(fused, candidates[:, 1]) and not list(router.parameters())


def test_router_mlp_has_the_paper_shape():
    router = CandidateRouter(2, 4096 // 64, 1024 // 64, "softmax")
    assert [tuple(m.weight.shape) for m in router.mlp if hasattr(m, "weight")] == [(16, 128), (2, 16)]
