"""Session-wide runs of the deploy app, shared by the test modules of this folder (each run costs seconds)."""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.bundle.deploy.runs import DicomCase, run_app, write_case


@dataclass(frozen=True)
class AppRun:
    """One run of the app on a DICOM case: what was written, where the outputs went, the process."""

    case: DicomCase
    out: Path
    process: subprocess.CompletedProcess

    def output(self, kind: str) -> Path:
        """``OUT/ct_<kind>``: ``mask.nii.gz``, ``result.json`` or ``seg.dcm``."""
        return self.out / f"ct_{kind}"


@pytest.fixture(scope="session")
def dicom_run(tmp_path_factory) -> Callable[[str], AppRun]:
    """``dicom_run(case)``: the app's run on the series of ``case`` (tests.bundle.deploy.runs), made once."""
    runs: dict[str, AppRun] = {}

    def run(case: str) -> AppRun:
        if case not in runs:
            root = tmp_path_factory.mktemp(case)
            written = write_case(case, root / "ct")
            process = run_app("-i", str(written.folder), "-o", str(root / "out"), "--query", written.query)
            runs[case] = AppRun(written, root / "out", process)
        return runs[case]

    return run
