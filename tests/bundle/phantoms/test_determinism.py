"""Phantom generator: the same seed gives the same volumes and files, another seed other ones."""

from __future__ import annotations

import numpy as np

from bundle.phantoms import generate_phantom, write_dataset
from bundle.phantoms.__main__ import main
from tests.bundle.phantoms.series import SEED, SHAPE


def test_same_seed_and_index_give_identical_volumes(phantoms):
    again = generate_phantom(SEED, 2, SHAPE)
    np.testing.assert_array_equal(again.image, phantoms[2].image)
    np.testing.assert_array_equal(again.label, phantoms[2].label)
    np.testing.assert_array_equal(again.affine, phantoms[2].affine)
    assert again.prompts == phantoms[2].prompts


def test_different_seeds_or_indices_give_different_volumes(phantoms):
    other_seed = generate_phantom(SEED + 1, 0, SHAPE)
    assert not np.array_equal(other_seed.affine, phantoms[0].affine)
    assert not np.array_equal(phantoms[1].label, phantoms[0].label)


def test_anatomy_does_not_depend_on_the_grid_shape(phantoms):
    finer = generate_phantom(SEED, 0, (80, 80, 20))
    for name, placed in phantoms[0].patient.placed.items():
        np.testing.assert_array_equal(finer.patient.placed[name].centre, placed.centre)


def test_smaller_dataset_is_a_prefix_of_a_larger_one_with_the_same_seed(tmp_path):
    small = write_dataset(tmp_path / "small", 2, SEED, SHAPE)
    large = write_dataset(tmp_path / "large", 3, SEED, SHAPE)
    for folder in ("imagesTr", "labelsTr"):
        for index in range(2):
            name = f"{folder}/phantom_{index:03d}.nii.gz"
            assert (small.parent / name).read_bytes() == (large.parent / name).read_bytes()


def test_same_seed_writes_identical_files(tmp_path, written):
    out, _, argv = written
    again = tmp_path / "again"
    assert main([*argv[:1], str(again), *argv[2:]]) == 0
    for path in sorted(p.relative_to(out) for p in out.rglob("*") if p.is_file()):
        assert (again / path).read_bytes() == (out / path).read_bytes(), path
