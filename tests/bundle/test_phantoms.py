"""Phantom generator: determinism, non-RAS geometry, anatomy in world space, true questions, the CLI."""

from __future__ import annotations

import json

import nibabel as nib
import numpy as np
import pytest

import bundle.phantoms.dataset as dataset_module
from bundle.phantoms import DATASET_POOLS, LABELS, ORGANS, generate_phantom, violations, write_dataset
from bundle.phantoms.__main__ import main
from bundle.phantoms.anatomy import SCAN, TISSUES, hu_range
from bundle.phantoms.dataset import assign_splits
from bundle.phantoms.questions import Perspective

SEED = 3  # six volumes of this series cover oblique grids, both lesions, each stomach content, both cyst sides
SHAPE = (64, 64, 16)
VOLUMES = 6
NAMES = {name: value for value, name in LABELS.items()}
POOL_KEYS = ("long", "short", "long_explanation", "short_explanation")


@pytest.fixture(scope="module")
def phantoms():
    return [generate_phantom(SEED, index, SHAPE) for index in range(VOLUMES)]


@pytest.fixture(scope="module")
def written(tmp_path_factory):
    """A dataset written through the command line, with its printed output."""
    out = tmp_path_factory.mktemp("cli") / "phantoms"
    argv = ["--out", str(out), "--n", "4", "--seed", str(SEED), "--shape", *map(str, SHAPE), "--val-fraction", "0.25",
            "--test-fraction", "0.25"]  # fmt: skip
    return out, main(argv), argv


def _world_centroid(label: np.ndarray, affine: np.ndarray, name: str) -> np.ndarray:
    ijk = np.argwhere(label == NAMES[name])
    return (ijk @ affine[:3, :3].T + affine[:3, 3]).mean(axis=0)


def _entries(description: dict) -> list[dict]:
    return description["training"] + description["validation"] + description["test"]


# --- determinism -----------------------------------------------------------------------------


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


# --- geometry --------------------------------------------------------------------------------


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
        x = {name: _world_centroid(phantom.label, phantom.affine, name)[0] for name in phantom.labels.values()}
        assert x["left kidney"] < x["spine"] < x["right kidney"]
        assert x["spleen"] < x["spine"] < x["liver"]
        assert x["aorta"] < x["inferior vena cava"]


def test_reoriented_files_put_the_left_kidney_at_lower_ras_index(written):
    out, _, _ = written
    for path in sorted((out / "labelsTr").glob("*.nii.gz")):
        ras = np.asarray(nib.as_closest_canonical(nib.load(path)).dataobj)
        left, right = (np.argwhere(ras == NAMES[name])[:, 0].mean() for name in ("left kidney", "right kidney"))
        assert left < right


# --- anatomy and intensities -----------------------------------------------------------------


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
        _world_centroid(p.label, p.affine, "liver") - _world_centroid(p.label, p.affine, "spine") for p in phantoms
    ]
    spread = np.ptp(np.stack(relative), axis=0)
    assert np.all(spread[:2] > 5.0), spread  # mm, in-plane
    label_sets = {frozenset(p.labels.values()) for p in phantoms}
    assert len(label_sets) > 1


# --- questions -------------------------------------------------------------------------------


def test_every_question_fact_holds_on_every_slice_of_its_label(phantoms):
    for index, phantom in enumerate(phantoms):
        assert violations(phantom) == [], index


def test_every_label_pool_covers_both_perspectives_in_long_and_short_questions():
    assert set(DATASET_POOLS) == {spec.name for spec in ORGANS}
    for name, pool in DATASET_POOLS.items():
        for questions in (pool.long, pool.short):
            assert {q.perspective for q in questions} == set(Perspective), name
        for question in pool.questions:
            assert name not in question.text.lower(), question.text  # implicit: never names the answer
            assert name in question.explanation.lower(), question.explanation


def test_every_present_label_has_a_pool_with_aligned_explanations(written):
    out, _, _ = written
    description = json.loads((out / "dataset.json").read_text())
    for entry in _entries(description):
        for name in entry["present"]:
            pools = [p for p in (description["prompts"].get(name), entry["prompts"].get(name)) if p]
            assert pools, name
            for pool in pools:
                assert set(pool) == set(POOL_KEYS)
                assert len(pool["long"]) == len(pool["long_explanation"]) > 0
                assert len(pool["short"]) == len(pool["short_explanation"]) > 0
        assert set(entry["prompts"]) <= set(entry["present"])


# --- dataset.json and the command line -------------------------------------------------------


def test_cli_writes_images_labels_and_dataset_json(written, capsys):
    out, code, _ = written
    assert code == 0
    description = json.loads((out / "dataset.json").read_text())
    entries = _entries(description)
    assert [len(description[split]) for split in ("training", "validation", "test")] == [2, 1, 1]
    assert description["seed"] == SEED and description["modality"] == {"0": "CT"}
    assert sorted(e["image"] for e in entries) == [f"imagesTr/phantom_{i:03d}.nii.gz" for i in range(4)]
    names = list(description["labels"].values())
    assert description["labels"]["0"] == "background" and len(set(names)) == len(names)
    assert all(name == name.lower() for name in names)
    seen = set()
    for entry in entries:
        image, label = nib.load(out / entry["image"]), nib.load(out / entry["label"])
        assert image.get_data_dtype() == np.int16 and label.get_data_dtype() == np.uint8
        np.testing.assert_array_equal(image.affine, label.affine)
        values = np.unique(np.asarray(label.dataobj))
        assert sorted(entry["present"]) == sorted(LABELS[int(v)] for v in values if v)
        seen |= {LABELS[int(v)] for v in values}
    assert set(names) == seen  # every listed label occurs in some volume


def test_written_volume_matches_the_generated_one(written):
    out, _, _ = written
    phantom = generate_phantom(SEED, 1, SHAPE)
    image = nib.load(out / "imagesTr" / "phantom_001.nii.gz")
    np.testing.assert_array_equal(np.asarray(image.dataobj), phantom.image)
    np.testing.assert_array_equal(image.affine, phantom.affine)
    assert int(image.header["sform_code"]) == int(image.header["qform_code"]) == 1


def test_splits_have_the_requested_sizes():
    splits = assign_splits(20, SEED, 0.2, 0.1)
    assert (splits.count("training"), splits.count("validation"), splits.count("test")) == (14, 4, 2)


def test_cli_refuses_a_non_empty_directory_unless_overwrite(tmp_path, capsys):
    out = tmp_path / "data"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    argv = ["--out", str(out), "--n", "1", "--shape", *map(str, SHAPE)]
    assert main(argv) == 1
    assert "--out" in capsys.readouterr().err
    assert [p.name for p in out.iterdir()] == ["keep.txt"]
    assert main([*argv, "--overwrite"]) == 0
    assert sorted(p.name for p in out.iterdir()) == ["dataset.json", "imagesTr", "labelsTr"]


@pytest.mark.parametrize(
    ("option", "value"),
    [("--n", "0"), ("--seed", "-1"), ("--shape", "8"), ("--val-fraction", "1.5"), ("--test-fraction", "0.9")],
)
def test_cli_rejects_invalid_options_naming_them(tmp_path, capsys, option, value):
    args = {"--out": str(tmp_path / "data"), "--n": "2", "--seed": "0", "--val-fraction": "0.2"}
    args[option] = value
    argv = [item for pair in args.items() for item in pair]
    if option == "--shape":
        argv += ["8", "8"]
    assert main(argv) == 1
    assert option in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []


def test_failed_generation_leaves_no_partial_files(tmp_path, monkeypatch):
    real = dataset_module.generate_phantom

    def failing(seed, index, shape):
        if index == 1:
            raise RuntimeError("simulated failure")
        return real(seed, index, shape)

    monkeypatch.setattr(dataset_module, "generate_phantom", failing)
    with pytest.raises(RuntimeError, match="simulated"):
        write_dataset(tmp_path / "data", 2, SEED, SHAPE)
    assert list(tmp_path.iterdir()) == []


def test_scan_table_never_offers_a_ras_grid():
    assert ("R", "A", "S") not in SCAN.orientations
