"""The deploy app on NIfTI input, and the settings it checks before the model is built."""

from __future__ import annotations

import json

import nibabel as nib
import numpy as np
import pytest

from bundle.deploy.settings import resolve_query
from bundle.phantoms import generate_phantom
from common.errors import ConfigError, DataError
from tests.bundle.deploy.runs import NEEDS_DEPLOY_EXTRA, NIFTI_SHAPE, QUERY, SEED, run_app
from tests.helpers.configs import ROOT
from tests.helpers.volumes import write_nifti

pytest.importorskip("monai.deploy.core", reason=NEEDS_DEPLOY_EXTRA)

pytestmark = pytest.mark.filterwarnings("ignore:builtin type:DeprecationWarning")  # ITK's SWIG bindings


@pytest.fixture(scope="module")
def nifti_run(tmp_path_factory):
    """(input, output folder, process) of the app on a phantom (not RAS-aligned) NIfTI file."""
    folder = tmp_path_factory.mktemp("nifti")
    phantom = generate_phantom(SEED, 0, shape=NIFTI_SHAPE)
    source = folder / "ph0.nii.gz"
    write_nifti(source, phantom.image, phantom.affine)
    return source, folder / "out", run_app("-i", str(source), "-o", str(folder / "out"), "--query", QUERY)


def test_nifti_outputs_keep_the_input_geometry(nifti_run):
    source, out, process = nifti_run
    assert process.returncode == 0, process.stderr[-3000:]
    assert sorted(p.name for p in out.iterdir()) == ["ph0_mask.nii.gz", "ph0_result.json"]
    image, mask = nib.load(source), nib.load(out / "ph0_mask.nii.gz")
    assert mask.shape == image.shape and nib.aff2axcodes(image.affine) != ("R", "A", "S")
    np.testing.assert_array_equal(mask.affine, image.affine)
    assert mask.get_data_dtype() == np.uint8 and set(np.unique(np.asanyarray(mask.dataobj))) <= {0, 1}
    result = json.loads((out / "ph0_result.json").read_text())
    assert result["query"] == QUERY and result["image"] == str(source) and isinstance(result["answer"], str)
    assert "ph0: " in process.stdout, "the run ends with the bundle's summary"


def test_a_missing_input_is_one_error_line_and_writes_nothing(tmp_path):
    missing, out = tmp_path / "nowhere.nii.gz", tmp_path / "out"
    process = run_app("-i", str(missing), "-o", str(out), "--query", QUERY)
    assert process.returncode == 1
    assert process.stderr.strip() == f"error: image not found: {missing}"
    assert not out.exists()


def test_the_question_comes_from_the_flag_then_the_environment_then_app_yaml(tmp_path):
    app_yaml = tmp_path / "app.yaml"
    app_yaml.write_text("medisee:\n  query: Where is the spleen?\n")
    environ = {"MEDISEE_QUERY": "Where is the aorta?"}
    assert resolve_query("Where is the liver?", environ, app_yaml) == "Where is the liver?"
    assert resolve_query(None, environ, app_yaml) == "Where is the aorta?"
    assert resolve_query(None, {}, app_yaml) == "Where is the spleen?"
    with pytest.raises(ConfigError, match="empty .*MEDISEE_QUERY"):
        resolve_query(None, {"MEDISEE_QUERY": " "}, app_yaml)
    app_yaml.write_text("medisee:\n  query: null\n")
    with pytest.raises(ConfigError, match="no question"):
        resolve_query(None, {}, app_yaml)


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (b"", "is an empty file"),
        (b"plain text\n", "not a valid gzip file"),
        ((8, 6), "has shape (8, 6)"),
        ((8, 6, 4, 2), "is 4D with 2 volumes"),
    ],
    ids=["empty", "text", "2d", "4d"],
)
def test_bad_nifti_inputs_are_refused_before_the_model_is_built(tmp_path, content, expected):
    from bundle.deploy.cli import app_settings, build_parser

    image = tmp_path / "ct.nii.gz"
    if isinstance(content, bytes):
        image.write_bytes(content)
    else:
        write_nifti(image, np.zeros(content, np.int16), np.eye(4))
    args = build_parser().parse_args(["-i", str(image), "-o", str(tmp_path / "out"), "--query", QUERY])
    with pytest.raises(DataError) as raised:
        app_settings(args)
    assert str(image) in str(raised.value) and expected in str(raised.value)
    assert not (tmp_path / "out").exists()


def test_the_default_model_configs_resolve_against_the_app_bundle_from_any_directory(tmp_path, monkeypatch):
    from bundle.deploy.model import MediSeeBundle
    from bundle.deploy.settings import model_settings

    monkeypatch.chdir(tmp_path)
    bundle = MediSeeBundle(model_settings(None, {"checkpoint": None}))
    assert [path.name for path in bundle.settings.config_files] == ["model.json", "demo_model.json", "inference.json"]
    assert bundle.parser.get_parsed_content("bundle_root") == str(ROOT)
    assert bundle.parser.get_parsed_content("output_dir") == f"{ROOT}/eval"


@pytest.mark.slow
def test_without_config_the_app_runs_the_demo_model(tmp_path):
    source, out = ROOT / "demo" / "imagesTr" / "phantom_000.nii.gz", tmp_path / "out"
    process = run_app("-i", str(source), "-o", str(out), "--query", "Where is the liver?", config=None)
    assert process.returncode == 0, process.stderr[-3000:]
    result = json.loads((out / "phantom_000_result.json").read_text())
    assert result["weights"]["checkpoint"] == str(ROOT / "models" / "demo")
    assert result["query"] == "Where is the liver?", "the demo's own question (configs/demo.json) is not inherited"
    assert result["box_3d"] is not None, "the trained demo model finds the liver"


def test_questions_starting_with_config_syntax_come_through_as_given(tmp_path):
    app_yaml = tmp_path / "app.yaml"
    app_yaml.write_text("medisee:\n  query: '@image'\n")
    assert resolve_query(None, {}, app_yaml) == "@image"
    assert resolve_query(None, {"MEDISEE_QUERY": "%configs/inference.json#image"}, app_yaml).startswith("%configs")


@pytest.mark.slow
def test_an_injected_question_is_asked_literally_and_runs_nothing(nifti_run, tmp_path):
    source, _, _ = nifti_run
    written, out = tmp_path / "written", tmp_path / "out"
    injection = f"$__import__('pathlib').Path({str(written)!r}).write_text('x') or 'Where is the liver?'"
    process = run_app("-i", str(source), "-o", str(out), "--query", injection)
    assert process.returncode == 0, process.stderr[-3000:]
    assert json.loads((out / "ph0_result.json").read_text())["query"] == injection
    assert not written.exists()
