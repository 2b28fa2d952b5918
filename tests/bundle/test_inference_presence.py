"""Inference keeps a slice's mask only from its presence score, cleans the volume in 3D, and says when the
target is nowhere: found false, an empty mask, no slices, no 3D box, 0 mL and a not-found answer."""

from __future__ import annotations

import json

import monai.bundle
import nibabel as nib
import numpy as np
import pytest
import torch
from monai.data import MetaTensor

from bundle.inference import AnswerGenerator, SliceInferer
from bundle.inference import keys as K
from bundle.inference.answer import NOT_FOUND, not_found_answer
from bundle.prompts import PromptBuilder
from tests.helpers.inference import QUERY, outputs_of, save_phantom
from tests.helpers.tiny import TINY
from transforms.cleanup import TargetMaskCleanup

SLICES = 6


@pytest.fixture(scope="module")
def volume():
    generator = torch.Generator().manual_seed(0)
    return MetaTensor(torch.rand((1, 32, 28, SLICES), generator=generator), affine=torch.eye(4, dtype=torch.float64))


def infer(tiny, volume, threshold, cleanup=None, answer=False):
    model, tokenizer = tiny
    prompts = PromptBuilder.for_model(tokenizer, model)
    generator = AnswerGenerator(prompts, max_new_tokens=3) if answer else None
    inferer = SliceInferer(prompts, batch_size=4, presence_threshold=threshold, cleanup=cleanup, progress=False,
                           answer_generator=generator)  # fmt: skip
    with torch.no_grad():
        return inferer(volume, model, query=QUERY)


def test_a_slice_keeps_its_mask_only_from_the_presence_threshold(tiny, volume):
    everything = infer(tiny, volume, 0.0)
    scores = sorted(p.presence for p in everything[K.PREDICTIONS])
    assert len(scores) == SLICES and all(0.0 <= s <= 1.0 for s in scores)
    threshold = (scores[2] + scores[3]) / 2  # half the slices on each side
    half = infer(tiny, volume, threshold)
    kept = {p.index for p in everything[K.PREDICTIONS] if p.presence >= threshold}
    all_masks, half_masks = everything[K.PRED].as_tensor()[0], half[K.PRED].as_tensor()[0]
    for index in range(SLICES):
        expected = all_masks[..., index] if index in kept else torch.zeros_like(all_masks[..., index])
        assert torch.equal(half_masks[..., index], expected), index
    assert {p.index for p in half[K.SLICES]} <= kept


def test_nothing_above_the_threshold_means_not_found(tiny, volume):
    out = infer(tiny, volume, 1.0, cleanup=TargetMaskCleanup(), answer=True)
    assert out[K.SLICES] == [] and not bool(out[K.PRED].any())
    assert out[K.ANSWER] == NOT_FOUND or "[REJ]" in out[K.ANSWER_RAW]
    assert "[REJ]" not in out[K.ANSWER] and "[SEG]" not in out[K.ANSWER]
    best = max(out[K.PREDICTIONS], key=lambda p: p.presence)
    assert out[K.ANSWER_SLICE] == best.index, "the answer is generated where the target is likeliest"


def test_the_cleanup_recounts_each_slices_pixels(tiny, volume):
    raw = infer(tiny, volume, 0.0)
    cleaned = infer(tiny, volume, 0.0, cleanup=TargetMaskCleanup(min_volume_ml=0.0, keep_largest=True))
    mask = cleaned[K.PRED].as_tensor()[0]
    for prediction in cleaned[K.PREDICTIONS]:
        assert prediction.pixels == int(mask[..., prediction.index].sum())
    assert int(mask.sum()) <= int(raw[K.PRED].as_tensor().sum()) + int(mask.numel())


def test_a_rejecting_answer_is_kept_and_a_contradicting_one_replaced():
    assert not_found_answer("It is [REJ]. The heart is not visible in this image.", "[REJ]").startswith("It is [REJ]")
    assert not_found_answer("It is [SEG] and [BBOX]. The liver.", "[REJ]") == NOT_FOUND
    assert not_found_answer("It is [SEG] and [BBOX].", None) == NOT_FOUND


def test_the_workflow_reports_a_target_found_nowhere(tmp_path, capsys):
    image = save_phantom(tmp_path / "ph0.nii.gz", 0)
    out = tmp_path / "out"
    monai.bundle.run(config_file=TINY, logging_file=False, image=str(image), query=QUERY, output_dir=str(out),
                     presence_threshold=1.0, max_new_tokens=3)  # fmt: skip
    files = outputs_of(out, "ph0")
    result = json.loads(files["result"].read_text())
    assert result["found"] is False and result["slices"] == [] and result["box_3d"] is None
    assert result["volume_ml"] == 0.0 and len(result["presence"]) == nib.load(image).shape[2]
    assert result["answer"] == NOT_FOUND or "[REJ]" in result["answer_raw"]
    assert not np.asanyarray(nib.load(files["mask"]).dataobj).any() and files["overlay"].is_file()
    assert "ph0: no target found" in capsys.readouterr().out
