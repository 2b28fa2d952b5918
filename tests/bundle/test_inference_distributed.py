"""Inference over a list of volumes shared among ``torchrun`` processes (gloo on CPU), against one process."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import monai.bundle
import nibabel as nib
import numpy as np
import pytest

from bundle.inference.distributed import rank_share
from bundle.phantoms import write_dataset
from tests.helpers.configs import config_files, config_list
from tests.helpers.printed import repeated_lines
from tests.helpers.tiny import TINY

pytestmark = pytest.mark.filterwarnings("ignore:builtin type:DeprecationWarning")  # ITK's SWIG bindings

QUERY = "Where is the liver?"
FEW_TOKENS = 3
MULTI = config_list(config_files("inference.json", "multi_gpu_inference.json"))
SUFFIXES = ("_mask.nii.gz", "_result.json", "_overlay.png")


@pytest.fixture(scope="module")
def images(tmp_path_factory) -> Path:
    """A folder of three small phantom volumes."""
    out = tmp_path_factory.mktemp("phantoms") / "data"
    write_dataset(out, n=3, seed=11, shape=(64, 64, 16), val_fraction=0.0, test_fraction=0.0)
    return out / "imagesTr"


@pytest.fixture(scope="module")
def single_process(images, tmp_path_factory) -> Path:
    """Outputs of the plain (one process) workflow over the folder."""
    out = tmp_path_factory.mktemp("single")
    monai.bundle.run(config_file=TINY, logging_file=False, image=str(images), query=QUERY, output_dir=str(out),
                     max_new_tokens=FEW_TOKENS)  # fmt: skip
    return out


def torchrun(image: Path, out: Path, port: int) -> subprocess.CompletedProcess:
    """The multi-process workflow on two CPU processes."""
    command = [
        sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port", str(port),
        "-m", "monai.bundle", "run", "--config_file", MULTI, "--image", str(image), "--query", QUERY,
        "--output_dir", str(out), "--max_new_tokens", str(FEW_TOKENS),
    ]  # fmt: skip
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.run(
        command, cwd=out.parent, capture_output=True, encoding="utf-8", errors="replace", timeout=600, env=env
    )


def names(folder: Path) -> list[str]:
    return sorted(p.name[: -len("_mask.nii.gz")] for p in folder.glob("*_mask.nii.gz"))


def test_ranks_share_the_list_in_order_each_entry_once():
    entries = [f"v{i}" for i in range(7)]
    shares = [rank_share(entries, rank, 3) for rank in range(3)]
    assert shares == [["v0", "v3", "v6"], ["v1", "v4"], ["v2", "v5"]]
    assert rank_share(entries[:1], 1, 2) == []  # more ranks than volumes
    assert rank_share(entries) == entries  # no process group: one process holds everything


@pytest.mark.slow
def test_two_processes_write_each_volume_once_as_one_process_does(images, single_process, tmp_path):
    result = torchrun(images, tmp_path, port=29561)
    assert result.returncode == 0, result.stderr[-3000:]
    expected = sorted(p.name for p in single_process.iterdir())
    assert sorted(p.name for p in tmp_path.iterdir()) == expected, "each output exactly once, no temporary files"
    assert len(expected) == 3 * len(SUFFIXES)
    for name in names(single_process):
        mask, reference = (nib.load(folder / f"{name}_mask.nii.gz") for folder in (tmp_path, single_process))
        np.testing.assert_array_equal(np.asanyarray(mask.dataobj), np.asanyarray(reference.dataobj))
        np.testing.assert_array_equal(mask.affine, reference.affine)
        documents = [json.loads((folder / f"{name}_result.json").read_text()) for folder in (tmp_path, single_process)]
        assert documents[0] == documents[1], name
    assert result.stdout.count("MediSee inference:") == 1, "rank 0 alone prints the summary"
    assert repeated_lines(result.stdout) == [], "rank 0 alone prints, warnings included"
    assert result.stdout.count("the MediSee heads are untrained") == 1, result.stdout
    assert "MediSee inference: 3 volume(s) on 2 process(es)" in result.stdout
    listed = [line.split(":")[0] for line in result.stdout.splitlines() if line.startswith("phantom_")]
    assert listed == names(single_process), "every volume in the summary, sorted by name"


@pytest.mark.slow
def test_a_rank_without_volumes_only_joins_the_summary(images, tmp_path):
    result = torchrun(images / "phantom_001.nii.gz", tmp_path, port=29562)
    assert result.returncode == 0, result.stderr[-3000:]
    assert sorted(p.name for p in tmp_path.iterdir()) == [f"phantom_001{suffix}" for suffix in sorted(SUFFIXES)]
    assert "MediSee inference: 1 volume(s) on 2 process(es)" in result.stdout
