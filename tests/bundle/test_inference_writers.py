"""What the writers promise about the input's header, the result's coordinates and the weights' paths."""

from __future__ import annotations

import json
import os

import nibabel as nib
import numpy as np
import pytest
import torch
from monai.data import MetaTensor

from bundle.inference import SaveMaskd, SaveResultd
from bundle.inference import keys as K
from bundle.inference.outputs import OutputLayout
from transforms import load_volume
from transforms.dicom_reader import SLICE_ORIGINS

SHAPE = (6, 5, 4)


@pytest.mark.parametrize(("sform_code", "qform_code"), [(2, 1), (1, 0), (0, 1), (4, 2)])
def test_the_mask_keeps_the_inputs_sform_and_qform_codes_and_its_own_qform(tmp_path, sform_code, qform_code):
    sform = np.diag([2.0, 1.5, 3.0, 1.0])
    sform[:3, 3] = [5.0, -7.0, 11.0]
    qform = sform.copy()
    qform[0, 3] += 4.0  # a qform of its own (e.g. another registration)
    image = nib.Nifti1Image(np.zeros(SHAPE, np.int16), None)
    image.set_sform(sform, code=sform_code)
    image.set_qform(qform, code=qform_code)
    nib.save(image, tmp_path / "ct.nii.gz")
    volume = load_volume(tmp_path / "ct.nii.gz", axcodes=None)
    mask = MetaTensor(torch.ones(1, *SHAPE, dtype=torch.uint8), affine=volume.affine)
    nib.save(SaveMaskd.nifti(mask, volume.meta), tmp_path / "mask.nii.gz")
    written = nib.load(tmp_path / "mask.nii.gz")
    assert (int(written.header["sform_code"]), int(written.header["qform_code"])) == (sform_code, qform_code)
    np.testing.assert_allclose(written.affine, nib.load(tmp_path / "ct.nii.gz").affine, atol=1e-5)
    if qform_code:
        np.testing.assert_allclose(written.get_qform(), qform, atol=1e-5)


def test_an_uneven_stack_gets_no_nifti_mask(tmp_path, caplog):
    image = MetaTensor(torch.zeros(1, *SHAPE), meta={SLICE_ORIGINS: np.zeros((SHAPE[2], 3))})
    data = {K.NAME: "ct", K.IMAGE: image, K.PRED: MetaTensor(torch.ones(1, *SHAPE, dtype=torch.uint8))}
    out = SaveMaskd(OutputLayout(tmp_path))(data)
    assert not list(tmp_path.iterdir()) and K.OUTPUT_FILES not in out
    assert "no NIfTI mask written" in caplog.text


def test_the_result_names_its_coordinates_and_records_absolute_weight_paths(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    weights = {"llava_path": "weights/llava", "medsam_path": None, "checkpoint": "runs/ckpt"}
    data = {
        K.NAME: "ct",
        K.IMAGE: MetaTensor(torch.zeros(1, *SHAPE)),
        K.QUERY: "Where is the liver?",
        K.ANSWER: None,
        K.ANSWER_SLICE: None,
        K.RESULT: {"slices": [], "box_3d": None, "volume_ml": 0.0},
    }
    written = SaveResultd(OutputLayout(tmp_path / "out"), weights)(data)
    document = json.loads(open(written[K.OUTPUT_FILES][K.RESULT_FILE]).read())
    assert document["weights"] == {
        "llava_path": os.path.join(tmp_path, "weights", "llava"),
        "medsam_path": None,
        "checkpoint": os.path.join(tmp_path, "runs", "ckpt"),
    }
    assert "RAS" in document["coordinates"]["box_world"] and "LPS" in document["coordinates"]["to_dicom_lps"]
