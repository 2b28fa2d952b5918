"""Quiet by default: a run shows MediSee's own lines, and every failure ends in exactly one ``error:`` line.

Library notices (holoscan's GXF lines, CUDA and nvImageCodec probes on CPU machines, highdicom's
INFO, the SDK's series-selection INFO) are silenced through the libraries' own log levels, so
``--debug`` brings them back: nothing of ours is hidden with them.
"""

from __future__ import annotations

import subprocess
import sys

import pytest

from bundle.quiet import quiet_libraries
from tests.bundle.deploy.runs import NEEDS_DEPLOY_EXTRA, QUERY, run_app
from tests.helpers.volumes import write_nifti

pytest.importorskip("monai.deploy.core", reason=NEEDS_DEPLOY_EXTRA)

pytestmark = pytest.mark.filterwarnings("ignore:builtin type:DeprecationWarning")  # ITK's SWIG bindings

LIBRARY_NOTICES = (
    "[info]",
    "[warning]",
    "[error]",
    "GXF",
    "gxf_",
    "CUDA",
    "nvimgcodec",
    "nvImageCodec",
    "highdicom",
    "(root)",
)
"""What holoscan (lower-case levels in brackets), the SDK, highdicom and the decoders print when not silenced."""


def notices(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if any(notice in line for notice in LIBRARY_NOTICES)]


def test_a_dicom_run_shows_no_library_notices(dicom_run):
    run = dicom_run("regular")
    assert run.process.returncode == 0, run.process.stderr[-3000:]
    assert not notices(run.process.stderr), run.process.stderr
    assert "ct: target on" in run.process.stdout or "ct: no target found" in run.process.stdout


@pytest.fixture
def truncated(tmp_path):
    """A NIfTI file whose header reads and whose voxel data does not: found inside the app graph."""

    from bundle.phantoms import generate_phantom
    from tests.bundle.deploy.runs import NIFTI_SHAPE, SEED

    phantom = generate_phantom(SEED, 0, shape=NIFTI_SHAPE)
    whole = tmp_path / "whole.nii.gz"
    write_nifti(whole, phantom.image, phantom.affine)
    cut = tmp_path / "cut.nii.gz"
    data = whole.read_bytes()
    cut.write_bytes(data[: len(data) // 2])
    return cut


def one_error_line(process: subprocess.CompletedProcess, expected: str) -> str:
    assert process.returncode == 1
    errors = [line for line in process.stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1 and expected in errors[0], process.stderr[-3000:]
    assert process.stderr.strip().splitlines()[-1] == errors[0], "the error is the last line"
    assert "Traceback" not in process.stderr
    return errors[0]


@pytest.mark.slow
@pytest.mark.parametrize("case", ["truncated", "question_too_long"])
def test_problems_found_inside_the_app_graph_end_in_one_error_line_and_no_outputs(truncated, tmp_path, case):
    source, query, expected = truncated, QUERY, "truncated"
    if case == "question_too_long":  # longer than the tiny model's positions: found when the prompt is built
        source = truncated.with_name("whole.nii.gz")
        query, expected = "Which organ is this? " * 500, "too long"
    out = tmp_path / "out"
    process = run_app("-i", str(source), "-o", str(out), "--query", query)
    one_error_line(process, expected)
    assert not notices(process.stderr), process.stderr
    assert not out.exists() or not any(out.iterdir())


@pytest.mark.slow
def test_debug_shows_what_the_libraries_say_and_the_traceback(truncated, tmp_path):
    process = run_app("-i", str(truncated), "-o", str(tmp_path / "out"), "--query", QUERY, "--debug")
    assert process.returncode != 0
    assert "GXF_FAILURE" in process.stderr and "Traceback" in process.stderr


def test_quiet_libraries_sets_library_levels_but_keeps_a_users_own_setting():
    environ = {"HOLOSCAN_LOG_LEVEL": "INFO"}
    quiet_libraries(environ)
    assert environ == {"HOLOSCAN_LOG_LEVEL": "INFO", "TRANSFORMERS_VERBOSITY": "error"}
    script = (
        "from bundle.quiet import quiet_libraries; quiet_libraries(); "
        "from transformers.utils import logging; print(logging.get_verbosity())"
    )
    verbosity = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True).stdout
    assert int(verbosity) == 40, "transformers at ERROR: its resize notices are warnings"
