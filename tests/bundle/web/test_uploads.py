"""Uploads: stored under the server's own names, size-limited, unpacked flat, and nothing left of a refused one."""

from __future__ import annotations

import asyncio
import io
import zipfile
from pathlib import Path

import pytest

from bundle.web.uploads import UploadFolder, UploadLimits, shown_name, upload_kind
from common.errors import DataError

LIMITS = UploadLimits(max_bytes=1000, max_unpacked_bytes=3000)


async def chunks(data: bytes, size: int = 64):
    for start in range(0, len(data), size):
        yield data[start : start + size]


def store(folder: UploadFolder, name: str, data: bytes, declared: int | None = None):
    return asyncio.run(folder.store(name, chunks(data), declared))


def zipped(members: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return buffer.getvalue()


def test_a_user_file_name_never_becomes_a_path(tmp_path):
    folder = UploadFolder(tmp_path / "up", LIMITS)
    path = store(folder, "../../etc/.evil scan.nii.gz", b"x" * 10)
    assert path == tmp_path / "up" / "1" / "evil_scan.nii.gz" and path.read_bytes() == b"x" * 10
    assert store(folder, "..\\..\\.nii", b"y") == tmp_path / "up" / "2" / "upload.nii"
    assert shown_name("C:\\scans\\..\\a\x00b.nii") == "ab.nii"
    assert [p.relative_to(tmp_path) for p in sorted((tmp_path / "up").rglob("*"))] == [
        Path("up/1"),
        Path("up/1/evil_scan.nii.gz"),
        Path("up/2"),
        Path("up/2/upload.nii"),
    ]


def test_files_that_are_not_volumes_are_refused_before_anything_is_written(tmp_path):
    folder = UploadFolder(tmp_path / "up", LIMITS)
    with pytest.raises(DataError, match="notes.txt is not a volume the page reads"):
        store(folder, "notes.txt", b"hello")
    assert upload_kind("A.NII.GZ") == ".nii.gz" and upload_kind("s.zip") == ".zip"
    assert not (tmp_path / "up").exists()


@pytest.mark.parametrize("declared", [None, 5000])
def test_an_oversized_upload_is_refused_and_leaves_no_file(tmp_path, declared):
    folder = UploadFolder(tmp_path / "up", LIMITS)
    with pytest.raises(DataError, match="larger than the 0.000953674 MiB an upload may be"):
        store(folder, "big.nii", b"x" * 1500, declared)
    assert not (tmp_path / "up").exists() or list((tmp_path / "up").iterdir()) == []


def test_a_zipped_series_is_unpacked_flat_under_numbered_names(tmp_path):
    folder = UploadFolder(tmp_path / "up", LIMITS)
    data = zipped({"../../x/1.dcm": b"a", "series/2.dcm": b"b", "__MACOSX/._2.dcm": b"junk", ".DS_Store": b"j"})
    path = store(folder, "study.zip", data)
    assert path == tmp_path / "up" / "1" / "study" and path.is_dir()
    assert sorted(p.read_bytes() for p in path.iterdir()) == [b"a", b"b"]
    assert sorted(p.name for p in (tmp_path / "up" / "1").iterdir()) == ["study"]


@pytest.mark.parametrize(
    "data, message",
    [
        (b"not a zip at all", "is not a readable zip file"),
        (zipped({"a.dcm": b"\0" * 4000}), "unpacks to more than"),
        (zipped({"empty/": b""}), "holds no files"),
    ],
)
def test_bad_zips_are_refused_and_leave_nothing(tmp_path, data, message):
    folder = UploadFolder(tmp_path / "up", LIMITS)
    with pytest.raises(DataError, match=message):
        store(folder, "series.zip", data)
    assert list((tmp_path / "up").iterdir()) == []
