"""Phantom generator: grids that are not RAS-aligned, some oblique, with left and right where they belong."""

from __future__ import annotations

import nibabel as nib
import numpy as np

from tests.bundle.phantoms.series import NAMES, world_centroid


def test_affines_are_not_ras_aligned_and_some_are_oblique(phantoms):
    for phantom in phantoms:
        assert phantom.orientation != ("R", "A", "S")
        assert not np.allclose(phantom.affine, np.eye(4))
        assert np.linalg.norm(phantom.affine[:3, 3]) > 0
        # voxel axis 2 is the superior-inferior axis in magnitude
        assert np.argmax(np.abs(phantom.affine[:3, 2])) == 2
    linear = [p.affine[:3, :3] / np.linalg.norm(p.affine[:3, :3], axis=0) for p in phantoms]
    oblique = [not np.allclose(np.abs(m), np.round(np.abs(m))) for m in linear]
    assert oblique == [p.oblique for p in phantoms]
    assert any(oblique) and not all(oblique)


def test_left_sided_organs_have_smaller_ras_x_than_right_sided_ones(phantoms):
    # RAS+: x increases towards the patient's right (nibabel's coordinate-system convention).
    for phantom in phantoms:
        x = {name: world_centroid(phantom.label, phantom.affine, name)[0] for name in phantom.labels.values()}
        assert x["left kidney"] < x["spine"] < x["right kidney"]
        assert x["spleen"] < x["spine"] < x["liver"]
        assert x["aorta"] < x["inferior vena cava"]


def test_reoriented_files_put_the_left_kidney_at_lower_ras_index(written):
    out, _, _ = written
    for path in sorted((out / "labelsTr").glob("*.nii.gz")):
        ras = np.asarray(nib.as_closest_canonical(nib.load(path)).dataobj)
        left, right = (np.argwhere(ras == NAMES[name])[:, 0].mean() for name in ("left kidney", "right kidney"))
        assert left < right
