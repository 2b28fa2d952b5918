"""Preprocessing: MedSAM and CLIP batches from mixed-size slices, and the SAM frame matching MedSAM's mapping."""

from __future__ import annotations

import pytest
import torch
from monai.data import MetaTensor

from common.errors import ConfigError, DataError
from networks.config import SamConfig
from networks.medsam import MedSAM
from transforms import CLIP_MEAN, CLIP_STD, clip_preprocess, medsam_preprocess
from transforms.preprocess import longest_side_shape

SIZE = 128
MIXED_SIZES = [(24, 40), (40, 24), (30, 30), (17, 23)]


@pytest.fixture(scope="module")
def longest_side_sam() -> MedSAM:
    config = SamConfig(
        encoder_embed_dim=32,
        encoder_depth=2,
        encoder_num_heads=2,
        encoder_global_attn_indexes=[1],
        image_size=SIZE,
        window_size=4,
        prompt_embed_dim=32,
        mask_in_chans=4,
        decoder_mlp_dim=64,
        decoder_num_heads=2,
        iou_head_hidden_dim=32,
        resize="longest_side",
    )
    return MedSAM(config).eval()


def _mixed_batch(seed: int = 0) -> list[torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    channels = [1, 3, 1, 3]
    return [100.0 * torch.rand(c, h, w, generator=generator) - 50.0 for c, (h, w) in zip(channels, MIXED_SIZES)]


@pytest.mark.parametrize("resize", ["stretch", "longest_side"])
def test_medsam_batch_is_three_channels_in_unit_range_per_slice(resize):
    batch = medsam_preprocess(_mixed_batch(), size=SIZE, resize=resize)

    assert batch.shape == (len(MIXED_SIZES), 3, SIZE, SIZE)
    for row in batch:
        assert row.min() == 0.0 and row.max() == 1.0


def test_single_channel_slices_are_repeated_to_three_identical_channels():
    batch = medsam_preprocess(torch.rand(2, 1, 20, 30), size=SIZE)
    assert torch.equal(batch[:, 0], batch[:, 1]) and torch.equal(batch[:, 0], batch[:, 2])


def test_metatensor_slices_give_a_plain_tensor_batch():
    batch = medsam_preprocess([MetaTensor(torch.rand(1, 12, 9))], size=SIZE)
    assert type(batch) is torch.Tensor and type(clip_preprocess(batch[:, :1])) is torch.Tensor


def test_constant_slices_become_zeros_not_nan():
    batch = medsam_preprocess([torch.full((1, 10, 12), 7.0)], size=SIZE)
    assert torch.equal(batch, torch.zeros(1, 3, SIZE, SIZE))


@pytest.mark.parametrize(("height", "width"), MIXED_SIZES)
def test_longest_side_places_content_top_left_with_zero_padding(height, width):
    image = torch.ones(1, height, width)
    image[0, 0, 0] = 0.0  # one dark pixel so min-max keeps the rest at 1
    content_h, content_w = longest_side_shape(height, width, SIZE)

    frame = medsam_preprocess([image], size=SIZE, resize="longest_side")[0, 0]

    assert max(content_h, content_w) == SIZE
    assert frame[content_h - 1, content_w - 1] > 0.5  # content reaches the computed extent
    assert frame[content_h:].abs().sum() == 0 and frame[:, content_w:].abs().sum() == 0


@pytest.mark.parametrize(("height", "width"), MIXED_SIZES)
def test_longest_side_masks_return_to_the_slice_through_medsam(longest_side_sam, height, width):
    mask = torch.zeros(height, width)
    mask[2 : height // 2, width // 3 : width - 1] = 1.0  # reaches the last column and far from the first
    mask[height - 4 :, :3] = 1.0  # bottom-left block reaches the last row

    frame = medsam_preprocess([mask[None]], size=SIZE, resize="longest_side")[:, 0]
    logits = longest_side_sam.masks_to_original(frame - 0.5, [(height, width)])[0]

    assert logits.shape == (height, width)
    assert torch.equal((logits > 0).float(), mask)


def test_longest_side_box_scale_matches_the_content_extent(longest_side_sam):
    sizes = torch.tensor(MIXED_SIZES)
    scale = longest_side_sam.input_frame_scale(sizes)  # (sx, sy): the full box (0, 0, 1, 1) in SAM pixels
    for (height, width), (sx, sy) in zip(MIXED_SIZES, scale.tolist()):
        content_h, content_w = longest_side_shape(height, width, SIZE)
        assert abs(sx - content_w) <= 0.5 and abs(sy - content_h) <= 0.5


def test_clip_output_is_the_resized_slice_normalised_by_clip_statistics():
    image = torch.rand(1, 32, 32)  # already the target size: the resize is the identity

    out = clip_preprocess([image], size=32)

    mean = torch.tensor(CLIP_MEAN).view(3, 1, 1)
    std = torch.tensor(CLIP_STD).view(3, 1, 1)
    torch.testing.assert_close(out[0], (image.expand(3, -1, -1) - mean) / std)


def test_clip_batch_of_mixed_sizes_stays_in_unit_range_before_normalisation():
    images = [torch.rand(c, h, w) for c, (h, w) in zip([1, 3, 3, 1], MIXED_SIZES)]

    out = clip_preprocess(images, size=64)

    assert out.shape == (len(images), 3, 64, 64)
    unnormalised = out * torch.tensor(CLIP_STD).view(1, 3, 1, 1) + torch.tensor(CLIP_MEAN).view(1, 3, 1, 1)
    assert unnormalised.min() >= -1e-6 and unnormalised.max() <= 1.0 + 1e-6


def test_unknown_resize_scheme_is_a_config_error():
    with pytest.raises(ConfigError, match="'resize'"):
        medsam_preprocess([torch.rand(1, 4, 4)], size=SIZE, resize="crop")


@pytest.mark.parametrize("images", [[torch.rand(2, 4, 4)], [torch.rand(4, 4)], torch.rand(3, 4, 4), []])
def test_slices_of_the_wrong_shape_are_data_errors(images):
    with pytest.raises(DataError):
        clip_preprocess(images)
