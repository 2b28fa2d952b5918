"""Intensity: CT windows and MR percentiles map to [0, 1] with clipping; non-finite voxels are repaired."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from monai.data import MetaTensor

import transforms.intensity
from common.errors import ConfigError
from transforms import WINDOW_PRESETS, CTWindowd, FiniteValuesd, MRNormalized
from transforms.intensity import all_finite


def _window(values, **kwargs) -> torch.Tensor:
    image = torch.tensor(values, dtype=torch.float32)[None]
    return CTWindowd("image", **kwargs)({"image": image})["image"][0]


def test_abdomen_window_maps_its_edges_and_level_and_clips_beyond():
    level, width = WINDOW_PRESETS["abdomen"]
    values = [level - width / 2, level, level + width / 2, -1000.0, 3000.0]

    out = _window(values, preset="abdomen")

    torch.testing.assert_close(out, torch.tensor([0.0, 0.5, 1.0, 0.0, 1.0]))


@pytest.mark.parametrize("preset", sorted(WINDOW_PRESETS))
def test_every_preset_maps_its_level_to_the_middle(preset):
    level, _ = WINDOW_PRESETS[preset]
    assert _window([level], preset=preset).item() == pytest.approx(0.5)


def test_presets_use_standard_radiology_values():
    assert WINDOW_PRESETS["lung"] == (-600.0, 1500.0)
    assert WINDOW_PRESETS["brain"] == (40.0, 80.0)
    assert WINDOW_PRESETS["bone"][0] > WINDOW_PRESETS["soft_tissue"][0]


def test_explicit_bounds_are_a_window_too():
    out = _window([-100.0, 0.0, 100.0, 200.0], a_min=-100.0, a_max=100.0)
    torch.testing.assert_close(out, torch.tensor([0.0, 0.5, 1.0, 1.0]))


@pytest.mark.parametrize(
    ("kwargs", "named"),
    [
        ({}, "preset"),
        ({"a_min": 0.0}, "a_max"),
        ({"preset": "abdomen", "a_min": 0.0, "a_max": 1.0}, "not both"),
        ({"preset": "liver_special"}, "'preset' must be one of"),
        ({"a_min": 100.0, "a_max": -100.0}, "'a_min'"),
    ],
)
def test_invalid_window_settings_are_config_errors_naming_the_argument(kwargs, named):
    with pytest.raises(ConfigError, match=named):
        CTWindowd("image", **kwargs)


def test_mr_percentiles_map_to_zero_and_one_and_clip_outliers():
    volume = torch.arange(1000, dtype=torch.float32).reshape(1, 10, 10, 10)
    volume[0, 0, 0, 0] = -5000.0  # outliers must not set the scale
    volume[0, -1, -1, -1] = 90000.0
    low, high = np.percentile(volume.numpy(), [1.0, 99.0])

    out = MRNormalized("image", lower=1.0, upper=99.0)({"image": volume})["image"]

    assert out.min() == 0.0 and out.max() == 1.0
    middle = volume[0, 5, 5, 5].item()
    assert out[0, 5, 5, 5].item() == pytest.approx((middle - low) / (high - low), abs=1e-6)


def test_mr_channels_are_normalised_separately():
    volume = torch.stack([torch.linspace(0, 10, 64), torch.linspace(500, 9000, 64)]).reshape(2, 4, 4, 4)

    out = MRNormalized("image", lower=0.0, upper=100.0)({"image": volume})["image"]

    torch.testing.assert_close(out[0], out[1])


@pytest.mark.parametrize(("lower", "upper"), [(50.0, 10.0), (-1.0, 99.0), (1.0, 101.0)])
def test_invalid_percentiles_are_config_errors(lower, upper):
    with pytest.raises(ConfigError, match="'lower'"):
        MRNormalized("image", lower=lower, upper=upper)


def test_non_finite_values_become_the_finite_extremes_with_a_warning_naming_the_file(caplog):
    image = MetaTensor(torch.tensor([[2.0, math.nan, math.inf, -math.inf, 7.0]]), meta={"filename_or_obj": "ct.nii.gz"})

    out = FiniteValuesd("image")({"image": image})["image"]

    torch.testing.assert_close(out.as_tensor(), torch.tensor([[2.0, 2.0, 7.0, 2.0, 7.0]]))
    (record,) = [r for r in caplog.records if r.levelname == "WARNING"]
    assert "image ct.nii.gz: 3 of 5 voxels are NaN or infinite" in record.getMessage()


def test_finite_images_are_repaired_silently(caplog):
    FiniteValuesd("image")({"image": torch.ones(1, 2, 2)})
    assert not [r for r in caplog.records if r.levelname == "WARNING"]


def test_an_all_nan_array_becomes_zeros():
    out = FiniteValuesd("image")({"image": torch.full((1, 3, 3), math.nan)})["image"]
    assert torch.equal(out.as_tensor(), torch.zeros(1, 3, 3))


def test_repair_keeps_metadata_and_makes_windowing_finite():
    affine = torch.diag(torch.tensor([2.0, 3.0, 1.0, 1.0]))
    image = MetaTensor(torch.tensor([[[math.nan, 40.0], [math.inf, -200.0]]]), affine=affine)

    repaired = FiniteValuesd("image")({"image": image})
    windowed = CTWindowd("image", preset="abdomen")(repaired)["image"]

    assert torch.isfinite(windowed).all()
    torch.testing.assert_close(windowed.affine, image.affine)


def test_integer_images_pass_through_unchanged():
    image = torch.arange(6, dtype=torch.int16).reshape(1, 2, 3)
    out = FiniteValuesd("image")({"image": image})["image"]
    assert out.dtype == torch.int16 and torch.equal(out.as_tensor(), image)


@pytest.mark.parametrize("window", [{"preset": "abdomen"}, {"a_min": -37.5, "a_max": 1234.25}])
def test_windowing_in_place_gives_monais_values_bit_for_bit_in_the_images_own_memory(window):
    values = torch.randn(1, 40, 30, 9, generator=torch.Generator().manual_seed(0)) * 800
    values[0, 0, 0, :3] = torch.tensor([-0.0, 40.0 - 200.0, 40.0 + 200.0])  # signed zero and the window's edges
    expected = CTWindowd("image", **window)({"image": MetaTensor(values.clone())})["image"]
    image = MetaTensor(values.clone())
    out = CTWindowd("image", **window, in_place=True)({"image": image})["image"]
    assert out.data_ptr() == image.data_ptr()
    assert torch.equal(out.as_tensor().view(torch.int32), expected.as_tensor().view(torch.int32))  # same bits


def test_windowing_in_place_leaves_other_types_to_monai():
    integers = torch.arange(-500, 500, 10, dtype=torch.int16).reshape(1, 10, 10, 1)
    out = CTWindowd("image", preset="abdomen", in_place=True)({"image": integers})["image"]
    assert out.dtype == torch.float32 and integers.dtype == torch.int16
    torch.testing.assert_close(out, CTWindowd("image", preset="abdomen")({"image": integers})["image"])


def test_the_finite_check_goes_slab_by_slab_and_finds_a_value_in_the_last_slab(monkeypatch):
    monkeypatch.setattr(transforms.intensity, "CHECK_CHUNK_ELEMENTS", 7)
    image = torch.zeros(1, 5, 4, 3)
    assert all_finite(image)
    image[0, -1, -1, -1] = math.inf
    assert not all_finite(image) and not all_finite(image.transpose(1, 3))  # any strides
    out = FiniteValuesd("image")({"image": image})["image"]
    assert torch.isfinite(out).all() and out[0, -1, -1, -1] == 0.0
