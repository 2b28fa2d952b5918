"""NIfTI label-map datasets: slices where labels are present, queries from names and pools, errors."""

from __future__ import annotations

import json

import nibabel as nib
import numpy as np
import pytest
import torch

from bundle.data.nifti import NiftiSliceDataset
from networks import ConfigError, DataError
from tests.helpers.volumes import write_nifti

LPS = np.diag([-0.8, -0.8, 2.5, 1.0])
LPS[:3, 3] = [40.0, 30.0, -20.0]


def _write(path, array, affine=LPS):
    path.parent.mkdir(parents=True, exist_ok=True)
    write_nifti(path, array, affine)


@pytest.fixture()
def dataset(tmp_path):
    """One 12x10x6 volume: liver (1) on slices 1-3, kidney (2) on slice 3-4, a -1000 HU background."""
    image = np.full((12, 10, 6), -1000, np.int16)
    labels = np.zeros((12, 10, 6), np.uint8)
    labels[2:6, 2:5, 1:4] = 1
    labels[7:10, 5:8, 3:5] = 2
    image[labels == 1] = 60
    image[labels == 2] = 160
    _write(tmp_path / "imagesTr" / "a.nii.gz", image)
    _write(tmp_path / "labelsTr" / "a.nii.gz", labels)
    description = {
        "labels": {"0": "background", "1": "liver", "2": "Left Kidney"},
        "prompts": {
            "liver": {
                "long": ["The big organ that makes bile."],
                "short": ["Bile maker."],
                "long_explanation": ["Bile."],
                "short_explanation": ["Bile."],
            }
        },
        "training": [{"image": "imagesTr/a.nii.gz", "label": "labelsTr/a.nii.gz"}],
    }
    (tmp_path / "dataset.json").write_text(json.dumps(description))
    return tmp_path


def test_every_slice_with_a_label_is_an_image_with_those_targets(dataset):
    data = NiftiSliceDataset(dataset, kind_weights={"label": 1.0})
    targets = {
        data[i]["source"].rsplit("#slice", 1)[1]: sorted(t.class_name for t in data[i]["targets"])
        for i in range(len(data))
    }
    # RAS reorientation flips x and y of an LPS file but keeps the axial axis order
    assert targets == {"1": ["liver"], "2": ["liver"], "3": ["left kidney", "liver"], "4": ["left kidney"]}


def test_masks_match_the_reoriented_label_map_and_images_are_windowed(dataset):
    data = NiftiSliceDataset(dataset, kind_weights={"label": 1.0}, intensity="abdomen")
    sample = data[2]  # slice 3
    liver = next(t for t in sample["targets"] if t.class_name == "liver")
    assert liver.mask.shape == sample["image"].shape[-2:] == (12, 10)
    assert int(liver.mask.sum()) == 4 * 3
    flipped = np.zeros((12, 10), bool)
    flipped[2:6, 2:5] = True
    assert torch.equal(liver.mask, torch.from_numpy(flipped[::-1, ::-1].copy()))  # LPS -> RAS flips x and y
    inside = sample["image"][0][liver.mask]
    assert torch.allclose(inside, torch.full_like(inside, (60 - (40 - 200)) / 400))  # abdomen window L40/W400
    assert float(sample["image"].min()) == 0.0


def test_reasoning_queries_come_from_the_pools(dataset):
    data = NiftiSliceDataset(dataset, mode="eval")
    kinds = sorted((t.class_name, t.query.kind) for i in range(len(data)) for t in data[i]["targets"])
    assert kinds.count(("liver", "long")) == 3 and kinds.count(("left kidney", "long")) == 0
    assert kinds.count(("left kidney", "label")) == 2


def test_missing_volume_is_named_or_skipped(dataset):
    description = json.loads((dataset / "dataset.json").read_text())
    description["training"].append({"image": "imagesTr/gone.nii.gz", "label": "labelsTr/a.nii.gz"})
    (dataset / "dataset.json").write_text(json.dumps(description))
    with pytest.raises(DataError, match="gone.nii.gz"):
        NiftiSliceDataset(dataset)
    assert len(NiftiSliceDataset(dataset, on_missing="skip")) == 4  # the slices of a.nii.gz
    (dataset / "imagesTr" / "a.nii.gz").unlink()
    with pytest.raises(DataError, match="split 'training' lists no usable volumes"):
        NiftiSliceDataset(dataset, on_missing="skip")


def test_missing_dataset_json_names_the_config_key(tmp_path):
    with pytest.raises(DataError, match="dataset_dir"):
        NiftiSliceDataset(tmp_path)


def test_escaping_paths_and_bad_options_are_refused(dataset):
    description = json.loads((dataset / "dataset.json").read_text())
    description["training"][0]["image"] = "../../etc/passwd"
    (dataset / "dataset.json").write_text(json.dumps(description))
    with pytest.raises(DataError, match="escapes"):
        NiftiSliceDataset(dataset)
    with pytest.raises(ConfigError, match="split"):
        NiftiSliceDataset(dataset, split="train")


def _replace_image(dataset, content) -> str:
    """Replaces the training image by ``content`` (bytes, or an array saved as NIfTI); returns its path."""
    path = dataset / "imagesTr" / "a.nii.gz"
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        _write(path, content)
    return str(path.resolve())


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (b"", "is an empty file"),
        (b"not an image at all\n", "not a valid gzip file"),
        (np.zeros((12, 10), np.int16), r"has shape \(12, 10\)"),
        (np.zeros((12, 10, 6, 2), np.int16), "is 4D with 2 volumes"),
        (np.zeros((12, 10, 5), np.int16), r"has shape \(12, 10, 5\) but label .* has \(12, 10, 6\)"),
    ],
    ids=["empty", "text", "2d", "4d", "other shape"],
)
def test_bad_image_files_are_refused_when_the_dataset_is_built(dataset, content, expected):
    path = _replace_image(dataset, content)
    with pytest.raises(DataError, match=expected) as raised:
        NiftiSliceDataset(dataset)
    assert path in str(raised.value)


def test_a_truncated_image_is_named_when_its_slices_are_read(dataset):
    data = (dataset / "imagesTr" / "a.nii.gz").read_bytes()
    path = _replace_image(dataset, data[: len(data) - 40])  # the header survives, the voxels do not
    samples = NiftiSliceDataset(dataset)
    with pytest.raises(DataError, match="truncated") as raised:
        samples[0]
    assert path in str(raised.value)


def test_entries_without_a_label_are_named(dataset):
    description = json.loads((dataset / "dataset.json").read_text())
    del description["training"][0]["label"]
    (dataset / "dataset.json").write_text(json.dumps(description))
    with pytest.raises(DataError, match=r"training\[0\] needs 'image' and 'label'"):
        NiftiSliceDataset(dataset)


def test_nan_voxels_in_training_images_are_repaired_with_a_warning(dataset, caplog):
    image = np.asanyarray(nib.load(dataset / "imagesTr" / "a.nii.gz").dataobj).astype(np.float32)
    image[0, 0, 2] = np.nan
    _replace_image(dataset, image)
    sample = NiftiSliceDataset(dataset)[0]
    assert torch.isfinite(sample["image"]).all()
    assert any("NaN or infinite" in r.getMessage() for r in caplog.records)
