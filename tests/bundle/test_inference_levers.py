"""The speed settings of the inference workflow change how fast it runs, not what it writes.

``num_workers`` loads the next volumes in worker processes while the current one is inferred, and
a bad file found there still stops the run with the one-line error; ``compile`` runs parts of the
model through ``torch.compile`` (here the real default backend, inductor, on the CPU).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
import torch

from bundle.inference.loading import VolumeLoader
from common.errors import ConfigError, DataError, root_cause
from tests.helpers.configs import ROOT
from tests.helpers.inference import QUERY, mask_array, outputs_of, run_bundle, save_phantom
from tests.helpers.tiny import TINY

pytestmark = [
    pytest.mark.filterwarnings("ignore:builtin type:DeprecationWarning"),  # ITK's SWIG bindings
    pytest.mark.filterwarnings("ignore:This DataLoader will create:UserWarning"),  # more workers than cores on purpose
]

NAMES = ("ph0", "ph1", "ph2")
WORKERS = 2
TRUNCATED_FRACTION = 0.9
COMPILE_BATCH = 6
"""16 slices in batches of 6, 6 and 4: the compiled encoder also meets a smaller last batch."""
MAX_FLIPPED_FRACTION = 1e-3
"""Inductor may round differently from eager; a mask voxel whose logit is within rounding of 0 may flip."""
BOX_TOLERANCE = 1e-4


@pytest.fixture(scope="module")
def volumes(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("volumes")
    for index, name in enumerate(NAMES):
        save_phantom(folder / f"{name}.nii.gz", index)
    return folder


@pytest.fixture(scope="module")
def eager_run(volumes, tmp_path_factory) -> Path:
    """The folder inferred the plain way: loading in the main process, nothing compiled."""
    out = tmp_path_factory.mktemp("eager")
    run_bundle(image=str(volumes), query=QUERY, output_dir=str(out), generate_answer=False, batch_size=COMPILE_BATCH)
    return out


def results(folder: Path, name: str) -> dict:
    return json.loads(outputs_of(folder, name)["result"].read_text())


def test_worker_processes_write_what_the_main_process_writes(volumes, eager_run, tmp_path):
    run_bundle(
        image=str(volumes), query=QUERY, output_dir=str(tmp_path), generate_answer=False, batch_size=COMPILE_BATCH,
        num_workers=WORKERS,
    )  # fmt: skip
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(p.name for p in eager_run.iterdir())
    for name in NAMES:
        mask, reference = (nib.load(outputs_of(folder, name)["mask"]) for folder in (tmp_path, eager_run))
        np.testing.assert_array_equal(np.asanyarray(mask.dataobj), np.asanyarray(reference.dataobj))
        np.testing.assert_array_equal(mask.affine, reference.affine)  # Invertd used the worker's MetaTensor trace
        assert results(tmp_path, name) == results(eager_run, name)


@pytest.fixture(scope="module")
def second_file_truncated(tmp_path_factory) -> Path:
    """``a`` is a good volume, ``b`` has its voxel data cut off (its header reads fine, so loading finds it)."""
    folder = tmp_path_factory.mktemp("truncated")
    save_phantom(folder / "a.nii.gz", 0)
    data = save_phantom(folder / "b.nii.gz", 1).read_bytes()
    (folder / "b.nii.gz").write_bytes(data[: int(len(data) * TRUNCATED_FRACTION)])
    return folder


@pytest.mark.parametrize("workers", [0, WORKERS])
def test_a_bad_file_met_by_a_worker_is_the_same_one_line_error(second_file_truncated, tmp_path, workers):
    bad = second_file_truncated / "b.nii.gz"
    with pytest.raises(Exception) as raised:
        run_bundle(image=str(second_file_truncated), query=QUERY, output_dir=str(tmp_path), num_workers=workers)
    cause = root_cause(raised.value)
    assert isinstance(cause, DataError), raised.value
    assert str(cause).startswith(f"cannot read image {bad} ") and "truncated" in str(cause) and "\n" not in str(cause)
    written = sorted(p.name for p in tmp_path.iterdir())
    assert written == sorted(path.name for path in outputs_of(tmp_path, "a").values()), "the run stops at the bad file"


def test_command_line_with_workers_names_the_bad_file_in_one_line(second_file_truncated, tmp_path):
    command = [
        sys.executable, "-m", "monai.bundle", "run", "--config_file", str(TINY), "--image", str(second_file_truncated),
        "--query", QUERY, "--output_dir", str(tmp_path / "out"), "--num_workers", str(WORKERS),
        "--generate_answer", "false",
    ]  # fmt: skip
    process = subprocess.run(command, cwd=ROOT, capture_output=True, encoding="utf-8", errors="replace", timeout=300)
    assert process.returncode == 1
    last = process.stderr.strip().splitlines()[-1]
    assert last.startswith(f"error: cannot read image {second_file_truncated / 'b.nii.gz'} ") and "truncated" in last
    assert "Traceback" not in process.stderr and "DataLoader worker" not in process.stderr


@pytest.mark.parametrize("value", [-1, "2", 1.5, True])
def test_num_workers_must_be_a_non_negative_integer(value):
    with pytest.raises(ConfigError, match=f"config 'num_workers' must be a non-negative integer.*got {value!r}"):
        VolumeLoader([], num_workers=value)


@pytest.mark.slow
def test_inductor_compiled_sam_encoder_writes_the_eager_masks(volumes, eager_run, tmp_path):
    torch.compiler.reset()
    try:
        run_bundle(
            image=str(volumes / "ph1.nii.gz"), query=QUERY, output_dir=str(tmp_path), generate_answer=False,
            batch_size=COMPILE_BATCH, compile="sam",
        )  # fmt: skip
    finally:
        torch.compiler.reset()
    mask, reference = mask_array(tmp_path, "ph1"), mask_array(eager_run, "ph1")
    assert reference.any(), "the random model marks something, so equality means something"
    assert np.mean(mask != reference) <= MAX_FLIPPED_FRACTION
    found, expected = results(tmp_path, "ph1"), results(eager_run, "ph1")
    assert [s["index"] for s in found["slices"]] == [s["index"] for s in expected["slices"]]
    for entry, ref in zip(found["slices"], expected["slices"]):
        np.testing.assert_allclose(entry["box_voxel"], ref["box_voxel"], atol=BOX_TOLERANCE)
