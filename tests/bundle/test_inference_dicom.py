"""``monai.bundle run`` on DICOM series as hospitals write them (tiny model: masks arbitrary, geometry exact).

Uneven spacing: no NIfTI mask (a warning says why), and the result's slice boxes lie on their
slices' true planes. Gantry tilt: the NIfTI mask is on an unsheared grid that ITK and nibabel read
alike, covering every source pixel (ITK reading each source file), with the target's volume intact.
"""

from __future__ import annotations

import json
import logging

import itk
import nibabel as nib
import numpy as np
import pytest

from bundle.phantoms import generate_phantom
from tests.helpers import dicom as D
from tests.helpers.inference import QUERY, outputs_of, run_bundle
from tests.helpers.volumes import itk_affine

pytestmark = pytest.mark.filterwarnings("ignore:builtin type:DeprecationWarning")  # ITK's SWIG bindings

SHAPE = (40, 32, 8)
RAS = np.array([-1.0, -1.0, 1.0])


def phantom_hu() -> np.ndarray:
    return generate_phantom(5, 1, shape=SHAPE).image.astype(np.int16)


@pytest.fixture(scope="module")
def uneven_run(tmp_path_factory):
    folder = tmp_path_factory.mktemp("uneven")
    positions = np.delete(D.regular_positions(SHAPE[2] + 2), [3, 4], axis=0)  # two slices missing
    D.write_series(folder / "ct", phantom_hu(), positions)
    logger = logging.getLogger("bundle.inference.writers")
    records: list[logging.LogRecord] = []
    handler = logging.Handler()
    handler.emit = records.append
    logger.addHandler(handler)
    try:
        run_bundle(image=str(folder / "ct"), query=QUERY, output_dir=str(folder / "out"), generate_answer=False)
    finally:
        logger.removeHandler(handler)
    return positions, folder / "out", [record.getMessage() for record in records]


@pytest.fixture(scope="module")
def tilted_run(tmp_path_factory):
    folder = tmp_path_factory.mktemp("tilt")
    datasets = D.write_series(
        folder / "ct", phantom_hu(), D.tilted_positions(SHAPE[2], 15.0), D.tilted_orientation(15.0)
    )
    run_bundle(image=str(folder / "ct"), query=QUERY, output_dir=str(folder / "out"), generate_answer=False)
    return datasets, folder / "out"


def test_an_uneven_series_writes_no_nifti_and_says_why(uneven_run):
    _, out, messages = uneven_run
    files = outputs_of(out, "ct")
    assert files["result"].is_file() and not files["mask"].exists()
    assert any("no NIfTI mask written" in message and "unevenly spaced" in message for message in messages)


def test_slice_boxes_of_an_uneven_series_lie_on_their_slices_true_planes(uneven_run):
    positions, out, _ = uneven_run
    result = json.loads(outputs_of(out, "ct")["result"].read_text())
    assert result["slices"], "the random model marks something"
    for entry in result["slices"]:
        (k,) = {corner[2] for corner in entry["box_voxel"]}  # the file slice the box is on
        z = RAS[2] * positions[int(k), 2]
        assert entry["box_world"][0][2] == pytest.approx(z) and entry["box_world"][1][2] == pytest.approx(z)


def test_a_tilted_series_mask_is_read_alike_by_itk_and_nibabel_and_covers_every_source_pixel(tilted_run):
    datasets, out = tilted_run
    path = outputs_of(out, "ct")["mask"]
    mask = nib.load(path)
    np.testing.assert_allclose(itk_affine(path), mask.affine, atol=1e-4)
    inverse = np.linalg.inv(mask.affine)
    rows, columns = datasets[0].Rows, datasets[0].Columns
    half_pixel = 0.5 + 1e-6
    for k, ds in enumerate(datasets):
        source = itk.imread(ds.filename)
        for column, row in [(0, 0), (columns - 1, 0), (0, rows - 1), (columns - 1, rows - 1)]:
            world = RAS * np.asarray(source.TransformIndexToPhysicalPoint([column, row, 0]))
            voxel = (inverse @ [*world, 1.0])[:3]
            assert np.all(np.abs(voxel - np.rint(voxel)) <= half_pixel) and np.rint(voxel[2]) == k
            assert np.all((np.rint(voxel) >= 0) & (np.rint(voxel) < mask.shape))


def test_a_tilted_series_keeps_the_targets_volume_through_the_resampling(tilted_run):
    _, out = tilted_run
    files = outputs_of(out, "ct")
    mask = nib.load(files["mask"])
    result = json.loads(files["result"].read_text())
    voxel_ml = abs(np.linalg.det(mask.affine[:3, :3])) / 1000.0
    assert result["volume_ml"] > 0
    assert float(np.asanyarray(mask.dataobj).sum()) * voxel_ml == pytest.approx(result["volume_ml"], abs=2e-3)
