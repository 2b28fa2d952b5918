"""Phantom generator: organ intensities in their HU ranges, several labels per slice, variation between volumes."""

from __future__ import annotations

import numpy as np

from bundle.phantoms import ORGANS
from bundle.phantoms.anatomy import TISSUES, hu_range
from tests.bundle.phantoms.series import world_centroid


def test_tissue_textures_fit_inside_their_declared_hu_ranges():
    for name, tissue in TISSUES.items():
        assert tissue.mottle_hu + tissue.shading_hu <= (tissue.hu[1] - tissue.hu[0]) / 2, name


def test_organ_intensities_lie_in_their_declared_hu_ranges(phantoms):
    for phantom in phantoms:
        tolerance = 5 * phantom.noise_sd  # noise-free values are inside by construction; noise is Gaussian
        for spec in ORGANS:
            values = phantom.image[phantom.label == spec.label].astype(float)
            if values.size == 0:
                continue
            low, high = hu_range(spec)
            assert low <= np.median(values) <= high, spec.name
            assert np.all((values >= low - tolerance) & (values <= high + tolerance)), spec.name
        assert np.median(phantom.image[phantom.label == 0]) < 0  # air and fat around the organs


def test_most_axial_slices_show_several_labels(phantoms):
    counts = [len(np.unique(p.label[:, :, k])) - 1 for p in phantoms for k in range(p.label.shape[2])]
    assert np.mean(counts) >= 4
    assert min(counts) >= 3


def test_organ_positions_and_lesions_vary_between_volumes(phantoms):
    relative = [
        world_centroid(p.label, p.affine, "liver") - world_centroid(p.label, p.affine, "spine") for p in phantoms
    ]
    spread = np.ptp(np.stack(relative), axis=0)
    assert np.all(spread[:2] > 5.0), spread  # mm, in-plane
    label_sets = {frozenset(p.labels.values()) for p in phantoms}
    assert len(label_sets) > 1
