"""The deploy app's DICOM SEG: frames tied to their source images, coded for viewers, valid for dicom3tools.

``dciodvfy`` (IOD conformance) and ``dcentvfy`` (entities consistent with the sources) come from the
Debian package dicom3tools, which ``.ci/run`` installs: these tests fail, not skip, without them.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from tests.bundle.deploy.runs import NEEDS_DEPLOY_EXTRA, run_app, write_case
from tests.helpers.dicom3tools import dicom3tools
from tests.helpers.tiny import TINY

pytest.importorskip("monai.deploy.core", reason=NEEDS_DEPLOY_EXTRA)
hd = pytest.importorskip("highdicom", reason=NEEDS_DEPLOY_EXTRA)
pydicom = pytest.importorskip("pydicom", reason=NEEDS_DEPLOY_EXTRA)

from pydicom.sr.codedict import codes  # noqa: E402  (after the skip: pydicom comes with the deploy extra)

pytestmark = pytest.mark.filterwarnings("ignore:builtin type:DeprecationWarning")  # ITK's SWIG bindings

SEG_CASES = ["regular", "uneven", "missing_slice", "tilt", "localizers", "enhanced"]


def read_seg(run):
    assert run.process.returncode == 0, run.process.stderr[-3000:]
    return pydicom.dcmread(run.output("seg.dcm"))


@pytest.mark.parametrize("case", SEG_CASES)
def test_seg_frames_reference_the_volumes_images_and_lie_where_they_lie(dicom_run, case):
    run = dicom_run(case)
    seg = read_seg(run)
    sources = run.case.datasets
    assert seg.Modality == "SEG" and seg.StudyInstanceUID == sources[0].StudyInstanceUID
    assert seg.SeriesInstanceUID != sources[0].SeriesInstanceUID
    (referenced,) = seg.ReferencedSeriesSequence
    assert referenced.SeriesInstanceUID == sources[0].SeriesInstanceUID
    # only the volume's images: the localizers of the series are not referenced
    assert {item.ReferencedSOPInstanceUID for item in referenced.ReferencedInstanceSequence} == {
        ds.SOPInstanceUID for ds in sources
    }
    positions = {}
    for ds in sources:
        if "PerFrameFunctionalGroupsSequence" in ds:
            for number, group in enumerate(ds.PerFrameFunctionalGroupsSequence, start=1):
                positions[(ds.SOPInstanceUID, number)] = group.PlanePositionSequence[0].ImagePositionPatient
        else:
            positions[(ds.SOPInstanceUID, None)] = ds.ImagePositionPatient
    assert seg.NumberOfFrames >= 1
    for frame in seg.PerFrameFunctionalGroupsSequence:  # each frame where its source image lies
        (derivation,) = frame.DerivationImageSequence
        (source,) = derivation.SourceImageSequence
        key = (
            source.ReferencedSOPInstanceUID,
            int(source.ReferencedFrameNumber) if "ReferencedFrameNumber" in source else None,
        )
        np.testing.assert_allclose(
            [float(v) for v in frame.PlanePositionSequence[0].ImagePositionPatient],
            [float(v) for v in positions[key]],
            atol=1e-3,
        )


def test_the_frames_are_those_of_slices_holding_the_target(dicom_run):
    run = dicom_run("regular")
    seg = hd.seg.Segmentation.from_dataset(read_seg(run))
    uids = [ds.SOPInstanceUID for ds in run.case.datasets]
    frames = seg.get_pixels_by_source_instance(uids, segment_numbers=[1])[..., 0]
    assert int(seg.NumberOfFrames) == int(frames.any(axis=(1, 2)).sum())


def coded(item, sequence: str):
    (code,) = getattr(item, sequence)
    return code


@pytest.mark.parametrize(
    ("case", "label", "category", "structure", "modifier", "region"),
    [
        ("regular", "Left kidney", codes.SCT.AnatomicalStructure, codes.SCT.Kidney, codes.SCT.Left, None),
        ("uneven", "Liver lesion", codes.SCT.MorphologicallyAbnormalStructure, codes.SCT.Lesion, None, codes.SCT.Liver),
        ("tilt", "MediSee target", codes.SCT.Tissue, codes.SCT.Tissue, None, None),
    ],
)
def test_the_segment_is_coded_coloured_and_described(dicom_run, case, label, category, structure, modifier, region):
    run = dicom_run(case)
    seg = read_seg(run)
    (segment,) = seg.SegmentSequence
    assert segment.SegmentLabel == label and segment.SegmentDescription == run.case.query
    assert coded(segment, "SegmentedPropertyCategoryCodeSequence").CodeValue == category.value
    coded_type = coded(segment, "SegmentedPropertyTypeCodeSequence")
    assert (coded_type.CodeValue, coded_type.CodingSchemeDesignator) == (structure.value, "SCT")
    modifiers = coded_type.get("SegmentedPropertyTypeModifierCodeSequence") or []
    assert [m.CodeValue for m in modifiers] == ([modifier.value] if modifier else [])
    regions = segment.get("AnatomicRegionSequence") or []
    assert [r.CodeValue for r in regions] == ([region.value] if region else [])
    assert len(segment.RecommendedDisplayCIELabValue) == 3
    assert seg.SeriesDescription == f"MediSee: {run.case.query}"[:64]
    assert seg.ContentLabel == "MEDISEE" and str(seg.ContentCreatorName) == "MediSee^"
    assert seg.ContentDescription.startswith(label)
    assert seg.BodyPartExamined == run.case.datasets[0].BodyPartExamined == "ABDOMEN"
    assert seg.DeviceSerialNumber not in ("", "0")


@pytest.mark.parametrize("case", SEG_CASES)
def test_dciodvfy_finds_no_error_in_the_seg(dicom_run, case):
    # dciodvfy checks only the file it is given; every message that is an error concerns our SEG
    report = dicom3tools("dciodvfy", dicom_run(case).output("seg.dcm"))
    errors = [line for line in report if line.startswith("Error")]
    assert not errors, "\n".join(report)


def test_dcentvfy_finds_the_seg_consistent_with_its_sources(dicom_run):
    run = dicom_run("regular")
    report = dicom3tools("dcentvfy", run.output("seg.dcm"), *(ds.filename for ds in run.case.datasets))
    errors = [line for line in report if line.startswith("Error")]
    assert not errors, "\n".join(report)


def test_a_target_found_nowhere_writes_no_seg_and_says_so(tmp_path):
    # a threshold no presence score of the untrained model reaches: nothing is found on any slice
    nothing_found = tmp_path / "nothing_found.json"
    nothing_found.write_text(json.dumps({"presence_threshold": 1.0}))
    written = write_case("regular", tmp_path / "ct")
    out = tmp_path / "out"
    config = str([*TINY, str(nothing_found)])
    process = run_app("-i", str(written.folder), "-o", str(out), "--query", written.query, config=config)
    assert process.returncode == 0, process.stderr[-3000:]
    assert not (out / "ct_seg.dcm").exists()
    assert "no target found, so no DICOM SEG is written" in process.stderr
    result = json.loads((out / "ct_result.json").read_text())
    assert result["found"] is False and result["slices"] == [] and result["volume_ml"] == 0.0
