"""Running the deploy app as users run it, and the DICOM series it is run on.

The app runs in a subprocess (the SDK configures logging for its whole process), with the tiny
model and every slice kept whatever its presence score (:data:`TINY_EVERY_SLICE`): masks are
arbitrary but must sit on the input's grid. Each DICOM case is written with
pydicom (tests.helpers.dicom): CT, pixels that are not square, files named against slice order.
"""

from __future__ import annotations

import resource
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from bundle.phantoms import generate_phantom
from tests.helpers import dicom as D
from tests.helpers.tiny import TINY

NEEDS_DEPLOY_EXTRA = "needs the deploy extra: pip install -c constraints/cpu.txt -e '.[deploy]'"
SEED = 5
QUERY = "Which organ here filters blood and makes urine?"
NIFTI_SHAPE = (64, 64, 16)
"""Shape of the phantom volumes the NIfTI-input tests write."""
DICOM_SHAPE = (40, 32, 8)
"""Columns, rows, slices of the DICOM series."""
TILT_DEGREES = 15.0
HOLOSCAN_STACK_BYTES = 32 * 1024 * 1024
"""The stack holoscan asks for; below it, its warning precedes every run's output."""
TINY_EVERY_SLICE = [*TINY, str(Path(__file__).with_name("every_slice.json"))]
"""The tiny inference configs with ``presence_threshold`` 0: the untrained model's presence scores are
arbitrary, and the geometry tests need a mask on the slices the decoder draws one on."""
RUN_TIMEOUT_S = 300
RAS = np.array([-1.0, -1.0, 1.0])


def _raise_stack_limit() -> None:
    _, hard = resource.getrlimit(resource.RLIMIT_STACK)
    wanted = HOLOSCAN_STACK_BYTES if hard == resource.RLIM_INFINITY else min(HOLOSCAN_STACK_BYTES, hard)
    resource.setrlimit(resource.RLIMIT_STACK, (wanted, hard))


def run_app(
    *args: str, env: dict[str, str] | None = None, config: str | None = str(TINY_EVERY_SLICE)
) -> subprocess.CompletedProcess:
    """``python -m bundle.deploy ARGS --config CONFIG`` (no ``--config`` for None) from a working directory of its
    own (not the bundle root)."""
    command = [sys.executable, "-m", "bundle.deploy", *args, *(["--config", config] if config else [])]
    with tempfile.TemporaryDirectory() as elsewhere:
        return subprocess.run(
            command,
            cwd=elsewhere,
            capture_output=True,
            encoding="utf-8",
            errors="replace",
            timeout=RUN_TIMEOUT_S,
            preexec_fn=_raise_stack_limit,
            env=env,
        )


def phantom_hu(shape: tuple[int, int, int] = DICOM_SHAPE) -> np.ndarray:
    """A (columns, rows, slices) int16 CT phantom in HU."""
    return generate_phantom(SEED, 1, shape=shape).image.astype(np.int16)


@dataclass(frozen=True)
class DicomCase:
    """A DICOM series written for one geometry case.

    Attributes:
        folder: the input folder.
        datasets: the volume's source instances, by slice (one enhanced instance: just it).
        positions: LPS position of each slice's first pixel, by slice.
        query: the question asked of it.
    """

    folder: Path
    datasets: list
    positions: np.ndarray
    query: str


def write_case(case: str, folder: Path) -> DicomCase:
    """Writes the series of ``case``: regular, uneven, missing_slice, tilt, localizers, enhanced, repeat or mosaic."""
    volume = phantom_hu()
    slices = DICOM_SHAPE[2]
    orientation = D.AXIAL
    if case == "uneven":
        offsets = np.array([0.0, 2.5, 5.0, 10.0, 12.5, 15.0, 22.5, 25.0])
        positions = np.asarray(D.ORIGIN) + offsets[:, None] * np.array([0.0, 0.0, 1.0])
    elif case == "missing_slice":
        positions = np.delete(D.regular_positions(slices + 1), 4, axis=0)
    elif case == "tilt":
        positions, orientation = D.tilted_positions(slices, TILT_DEGREES), D.tilted_orientation(TILT_DEGREES)
    else:
        positions = D.regular_positions(slices)
    if case == "enhanced":
        order = [3, 0, 7, 1, 5, 2, 6, 4]
        ds = D.write_enhanced_ct(folder / "ct.dcm", volume, positions, frame_order=order)
        return DicomCase(folder, [ds], positions, "Where is the liver lesion?")
    if case == "mosaic":
        ds = D.write_mosaic(folder / "mosaic.dcm")
        return DicomCase(folder, [ds], positions, QUERY)
    shared = D.study()
    datasets = D.write_series(folder, volume, positions, orientation, shared=shared)
    if case == "localizers":
        D.write_localizers(folder, shared)
    if case == "repeat":  # a second phase at one position, nothing to tell which one to use
        extra = D.ct_slice(shared, volume[..., 0], positions[3], number=50)
        extra.save_as(folder / "phase2.dcm", enforce_file_format=True)
    query = {"regular": "Where is the left kidney?", "uneven": "Where is the liver lesion?"}.get(case, QUERY)
    return DicomCase(folder, datasets, positions, query)
