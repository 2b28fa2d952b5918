"""The page's handlers over HTTP, without a browser: upload, ask, view, download, bad input, session end."""

from __future__ import annotations

import gzip
import io
import json
import urllib.parse
import zipfile

import nibabel as nib
import numpy as np
import pydicom
import pytest
from PIL import Image

from bundle.phantoms import generate_phantom
from bundle.session import Session
from bundle.web.app import COOKIE, create_app
from bundle.web.service import WebService
from bundle.web.uploads import UploadLimits
from tests.helpers import dicom as D
from tests.helpers.dicom3tools import dicom3tools, errors_of
from tests.helpers.inference import QUERY, mask_array, run_bundle, save_phantom
from tests.helpers.tiny import TINY
from tests.helpers.web import PageClient, ServedApp

pytestmark = pytest.mark.filterwarnings("ignore:builtin type:DeprecationWarning")

LIMIT_MB = 2.0


@pytest.fixture(scope="module")
def image(tmp_path_factory):
    return save_phantom(tmp_path_factory.mktemp("web") / "ph0.nii.gz", 0)


@pytest.fixture(scope="module")
def served(tmp_path_factory, image):
    session = Session.from_configs(
        TINY, {"output_dir": str(tmp_path_factory.mktemp("unused")), "presence_threshold": 0.0}
    )
    root = tmp_path_factory.mktemp("sessions")
    service = WebService(session, root, UploadLimits.megabytes(LIMIT_MB, 4 * LIMIT_MB), {"ph0": image}, "abdomen")
    with ServedApp(create_app(service)) as app:
        yield app, service, root
    assert list(root.iterdir()) == []  # the server's end deleted every session's folder


def page(served) -> PageClient:
    app, _, _ = served
    client = PageClient(app.url)
    status, body, kind = client.request("/")
    assert status == 200 and "text/html" in kind and b"MediSee" in body
    return client


def upload(client: PageClient, name: str, data: bytes):
    return client.json(f"/api/upload?{urllib.parse.urlencode({'filename': name})}", raw=data)


def test_an_uploaded_volume_is_answered_turn_by_turn_and_its_files_downloaded(served, image, tmp_path):
    client = page(served)
    status, info = upload(client, "my scan.nii.gz", image.read_bytes())
    assert status == 200 and info["name"] == "my scan.nii.gz" and info["shape"] == [64, 64, 16]
    assert info["window"] == {"level": 40.0, "width": 400.0}
    status, turn = client.json("/api/ask", {"question": QUERY})
    assert status == 200 and turn["turn"] == 1 and turn["question"] == QUERY
    assert turn["found"] and turn["slices"] and turn["volume_ml"] > 0 and turn["presence"] is not None
    assert turn["downloads"] == ["mask", "result", "overlay"]  # a NIfTI volume has no DICOM SEG
    status, progress = client.json("/api/progress", method="GET")
    assert progress == {"busy": False, "done": 16, "total": 16, "stage": "finding the target slice by slice"}
    status, mask, _ = client.request("/api/download/1/mask")
    assert status == 200
    (tmp_path / "mask.nii.gz").write_bytes(mask)
    saved = np.asanyarray(nib.load(tmp_path / "mask.nii.gz").dataobj)
    assert saved.sum() > 0 and saved.shape == nib.load(image).shape
    status, result, _ = client.request("/api/download/1/result")
    assert status == 200 and json.loads(result)["found"] is True
    status, follow_up = client.json("/api/ask", {"question": "And the one on the other side?"})
    assert status == 200 and follow_up["turn"] == 2
    status, png, kind = client.request(f"/api/view/axial/{turn['centre'][2]}.png?turn=1&level=40&width=400")
    assert status == 200 and kind == "image/png"
    rgb = np.asarray(Image.open(io.BytesIO(png)).convert("RGB")).astype(int)
    assert ((rgb[..., 0] - rgb[..., 1] > 40) & (rgb[..., 1] == rgb[..., 2])).sum() > 0  # the mask, in its colour
    status, plain, _ = client.request(f"/api/view/axial/{turn['centre'][2]}.png")
    plain_rgb = np.asarray(Image.open(io.BytesIO(plain)).convert("RGB")).astype(int)
    assert (plain_rgb[..., 0] == plain_rgb[..., 1]).all()  # without a turn: grey only


def test_the_web_mask_is_the_workflows_mask(served, image, tmp_path):
    client = page(served)
    client.json("/api/open", {"name": "ph0"})
    client.json("/api/ask", {"question": QUERY})
    status, mask, _ = client.request("/api/download/1/mask")
    (tmp_path / "web.nii.gz").write_bytes(mask)
    run_bundle(image=str(image), query=QUERY, output_dir=str(tmp_path / "cli"), presence_threshold=0.0)
    assert np.array_equal(np.asanyarray(nib.load(tmp_path / "web.nii.gz").dataobj), mask_array(tmp_path / "cli", "ph0"))


def test_a_zipped_dicom_series_opens(served, tmp_path):
    hu = generate_phantom(5, 1, shape=(40, 32, 8)).image.astype(np.int16)
    D.write_series(tmp_path / "series", hu, D.regular_positions(8))
    series = tmp_path / "series"
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as bundle:
        for path in sorted(series.iterdir()):
            bundle.write(path, f"DICOM/{path.name}")
    client = page(served)
    status, info = upload(client, "study.zip", archive.getvalue())
    assert status == 200, info
    assert sorted(info["shape"]) == [8, 32, 40]
    status, turn = client.json("/api/ask", {"question": QUERY})
    assert status == 200 and turn["found"] and turn["downloads"] == ["mask", "result", "overlay", "seg"]
    status, data, kind = client.request("/api/download/1/seg")
    assert status == 200 and kind == "application/dicom"
    seg = pydicom.dcmread(io.BytesIO(data))
    source = pydicom.dcmread(next(series.iterdir()))
    assert seg.Modality == "SEG" and seg.StudyInstanceUID == source.StudyInstanceUID
    assert seg.ReferencedSeriesSequence[0].SeriesInstanceUID == source.SeriesInstanceUID
    assert seg.SegmentSequence[0].SegmentDescription == QUERY
    assert int(seg.NumberOfFrames) == len(turn["slices"])  # one frame per slice holding the target
    (tmp_path / "seg.dcm").write_bytes(data)
    report = dicom3tools("dciodvfy", tmp_path / "seg.dcm")
    assert not errors_of(report), "\n".join(report)


def bad_uploads(image):
    flat = nib.Nifti1Image(np.zeros((32, 32), np.float32), np.eye(4))
    return [
        ("notes.txt", b"just text", 400, "is not a volume the page reads"),
        ("notes.nii.gz", b"just text", 400, "notes.nii.gz"),
        ("flat.nii", flat.to_bytes(), 400, "2D"),
        ("big.nii.gz", gzip.compress(b"\0" * 10) + b"\0" * int(LIMIT_MB * 2**20), 413, "larger than the 2 MiB"),
    ]


@pytest.mark.parametrize("case", range(4))
def test_bad_uploads_get_one_message_and_leave_no_files(served, image, case):
    name, data, code, message = bad_uploads(image)[case]
    _, service, _ = served
    client = page(served)
    status, body = upload(client, name, data)
    assert status == code and message in body["error"] and "\n" not in body["error"]
    (web,) = [w for w in service.sessions.values() if w.id == client_session(client)]
    assert not (web.folder / "uploads").exists() or list((web.folder / "uploads").iterdir()) == []


def client_session(client: PageClient) -> str:
    return client.cookie(COOKIE)


def test_requests_out_of_turn_are_refused_readably(served):
    client = page(served)
    status, body = client.json("/api/ask", {"question": QUERY})
    assert status == 400 and body["error"] == "no volume is open: upload one or pick one first"
    client.json("/api/open", {"name": "ph0"})
    assert client.json("/api/open", {"name": "../etc/passwd"})[0] == 400
    assert client.json("/api/ask", {"question": 3})[1]["error"].startswith("the question must be text")
    assert client.json("/api/ask", raw=b"{not json")[1]["error"] == "the request is not JSON"
    assert client.json("/api/ask", {"question": "   "})[1]["error"] == "the question is empty: type a question"
    assert client.json("/api/ask", {"question": "liver " * 5000})[1]["error"].startswith("the question is too long")
    assert "there is no turn 4" in client.json("/api/download/4/mask", method="GET")[1]["error"]
    assert "outside the volume" in client.json("/api/view/axial/99.png", method="GET")[1]["error"]
    assert client.json("/api/view/oblique/1.png", method="GET")[0] == 400
    assert client.json("/api/ask", {"question": "$import os"})[0] == 200  # text, never evaluated


def test_ending_a_session_deletes_its_folder(served):
    _, service, _ = served
    client = page(served)
    sid = client_session(client)
    folder = service.sessions[sid].folder
    client.json("/api/open", {"name": "ph0"})
    client.json("/api/ask", {"question": QUERY})
    assert any(folder.rglob("*_mask.nii.gz"))
    assert client.json("/api/end")[1] == {"ended": True}
    assert not folder.exists() and sid not in service.sessions
    assert client.json("/api/progress", method="GET")[0] == 404
