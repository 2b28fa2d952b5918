"""The bundle as the MONAI model zoo's CI runs it (``ci/unit_tests/test_<bundle>.py``).

The zoo keeps each bundle under ``models/<name>`` and runs its configs from the zoo's root with
``bundle_root="models/<name>"``, the metadata and logging files given, on tiny data it writes:
``ConfigWorkflow(...)``, ``initialize()``, ``check_properties()`` (must find nothing missing),
``run()``, ``finalize()``. Here a temporary folder plays the zoo's root and holds the bundle as
``models/medisee`` (a link to this checkout), so every path the configs use is relative to
somewhere other than the bundle.
"""

from __future__ import annotations

import json
from pathlib import Path

import nibabel as nib
import pytest
from monai.bundle import ConfigWorkflow

from bundle.engines.checkpoints import checkpoints_in
from bundle.phantoms import write_dataset
from tests.helpers.configs import ROOT

BUNDLE = "models/medisee"
"""Where the zoo would hold this bundle, relative to its root."""
SMALL = {
    "epochs": 1,
    "batch_size": 4,
    "validate#dataset#kinds": ["label"],
    "validate#dataset#min_target_pixels": 20,
    "val_batch_size": 8,
}
"""The zoo's habit: the fewest epochs and the smallest data that still run every part."""


@pytest.fixture(scope="module")
def zoo(tmp_path_factory) -> Path:
    """A model-zoo checkout holding this bundle as models/medisee, and tiny phantom data beside it."""
    root = tmp_path_factory.mktemp("model-zoo")
    (root / "models").mkdir()
    (root / BUNDLE).symlink_to(ROOT, target_is_directory=True)
    write_dataset(root / "data", n=3, seed=21, shape=(64, 64, 16), val_fraction=0.34, test_fraction=0.34)
    return root


@pytest.fixture(autouse=True)
def _from_the_zoo_root(zoo, monkeypatch):
    monkeypatch.chdir(zoo)


def zoo_workflow(workflow_type: str, *configs: str, **override) -> ConfigWorkflow:
    """A workflow as the zoo's unit tests build one: relative bundle_root, metadata and logging files given."""
    return ConfigWorkflow(
        workflow_type=workflow_type,
        config_file=[f"{BUNDLE}/configs/{name}" for name in configs],
        logging_file=f"{BUNDLE}/configs/logging.conf",
        meta_file=f"{BUNDLE}/configs/metadata.json",
        bundle_root=BUNDLE,
        **override,
    )


def check_workflow(workflow: ConfigWorkflow) -> None:
    """The zoo's ``check_workflow(..., check_properties=True)``."""
    workflow.initialize()
    missing = workflow.check_properties()
    assert not missing, f"check properties for workflow failed: {missing}"
    workflow.run()
    workflow.finalize()


@pytest.mark.slow
def test_train_then_evaluate_configs(zoo):
    out = zoo / "runs" / "tiny"
    data = {"dataset_dir": "data", "output_dir": "runs/tiny", **SMALL}  # relative to the zoo's root, as given
    check_workflow(zoo_workflow("train", "model.json", "tiny.json", "train.json", **data))
    assert checkpoints_in(out / "checkpoints")

    # evaluate.json overrides train.json, so the workflow type stays "train" (as the zoo's tests say)
    check_workflow(zoo_workflow("train", "model.json", "tiny.json", "train.json", "evaluate.json", **data))
    metrics = json.loads((out / "metrics.json").read_text())
    assert 0.0 <= metrics["dice"] <= 1.0 and "label" in metrics


def test_infer_config(zoo):
    volume = sorted((zoo / "data" / "imagesTr").glob("*.nii.gz"))[0]
    check_workflow(
        zoo_workflow(
            "infer", "model.json", "tiny.json", "inference.json",
            image=str(volume.relative_to(zoo)), query="Where is the liver?", output_dir="eval", max_new_tokens=2,
        )
    )  # fmt: skip
    mask = nib.load(zoo / "eval" / volume.name.replace(".nii.gz", "_mask.nii.gz"))
    assert mask.shape == nib.load(volume).shape


def test_the_demo_configs_find_their_model_and_volume_under_a_relative_bundle_root(zoo):
    check_workflow(
        zoo_workflow("infer", "model.json", "demo_model.json", "inference.json", "demo.json", output_dir="demo")
    )
    result = json.loads((zoo / "demo" / "phantom_000_result.json").read_text())
    # the result records the checkpoint it loaded as an absolute path
    assert result["weights"]["checkpoint"] == str(zoo / BUNDLE / "models" / "demo") and result["slices"]
