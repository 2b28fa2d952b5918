"""Phantom generator: dataset.json, the splits and the command line (refusals, no partial files)."""

from __future__ import annotations

import json

import nibabel as nib
import numpy as np
import pytest

import bundle.phantoms.dataset as dataset_module
from bundle.phantoms import LABELS, generate_phantom, write_dataset
from bundle.phantoms.__main__ import main
from bundle.phantoms.anatomy import SCAN
from bundle.phantoms.dataset import assign_splits
from tests.bundle.phantoms.series import SEED, SHAPE, all_entries


def test_cli_writes_images_labels_and_dataset_json(written, capsys):
    out, code, _ = written
    assert code == 0
    description = json.loads((out / "dataset.json").read_text())
    entries = all_entries(description)
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
