"""Uploaded volumes: stored in the web session's own folder, size-limited, never named by the user.

An upload is a NIfTI file (``.nii``, ``.nii.gz``) or a zipped DICOM series (``.zip``). Upload
``N`` is written in its own folder ``N/``, under the user's file name reduced to letters, digits,
``.``, ``-`` and ``_`` (no separators, no leading dot), so the outputs are named after the user's
file and no user text can reach a path outside that folder; a series is unpacked into ``N/NAME/``. The body
is streamed to a temporary name and renamed when complete; one over the size limit (read to its
end but not kept), or a zip whose members would unpack to more than the unpacked limit, is refused
and leaves nothing behind.
Members of a zip are written flat, under numbered names (a DICOM reader orders slices by their
headers, not their names): a member's own path is never used.
"""

from __future__ import annotations

import re
import shutil
import zipfile
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

from common.errors import DataError

NIFTI_SUFFIXES = (".nii.gz", ".nii")
ZIP_SUFFIX = ".zip"
MEGABYTE = 1024 * 1024
PARTIAL_SUFFIX = ".partial"
SHOWN_NAME_CHARS = 80
"""Longest display name kept from a user's file name."""
MEMBER_NAME = "{:05d}.dcm"
UNSAFE = re.compile(r"[^A-Za-z0-9._-]")


@dataclass(frozen=True)
class UploadLimits:
    """How large an upload may be.

    Attributes:
        max_bytes: largest upload body.
        max_unpacked_bytes: largest total size of a zip's members once unpacked.
    """

    max_bytes: int
    max_unpacked_bytes: int

    @classmethod
    def megabytes(cls, upload_mb: float, unpacked_mb: float) -> UploadLimits:
        """Limits given in MiB."""
        return cls(int(upload_mb * MEGABYTE), int(unpacked_mb * MEGABYTE))


class UploadTooLarge(DataError):
    """An upload over the size limit."""


def shown_name(filename: str) -> str:
    """A user's file name as it may be shown: its last path part, printable, at most :data:`SHOWN_NAME_CHARS`."""
    last = re.split(r"[\\/]", filename or "")[-1]
    printable = "".join(ch for ch in last if ch.isprintable()).strip()
    return printable[:SHOWN_NAME_CHARS] or "upload"


def upload_kind(filename: str) -> str:
    """The stored suffix of an upload named ``filename``: ``.nii.gz``, ``.nii`` or ``.zip``.

    Raises:
        DataError: any other kind of file.
    """
    lower = shown_name(filename).lower()
    for suffix in (*NIFTI_SUFFIXES, ZIP_SUFFIX):
        if lower.endswith(suffix):
            return suffix
    raise DataError(
        f"{shown_name(filename)} is not a volume the page reads: upload a NIfTI file (.nii, .nii.gz) "
        "or a zipped DICOM series (.zip)"
    )


def stored_name(filename: str, suffix: str) -> str:
    """The name an upload is stored under: the user's name with anything but ``[A-Za-z0-9._-]`` replaced."""
    stem = shown_name(filename)[: -len(suffix)]
    safe = UNSAFE.sub("_", stem).lstrip(".")
    return (safe or "upload") + suffix


class UploadFolder:
    """The uploads of one web session, in its own folder.

    Args:
        folder: the session's upload folder (created on the first upload).
        limits: the size limits.
    """

    def __init__(self, folder: Path, limits: UploadLimits) -> None:
        self.folder = folder
        self.limits = limits
        self.count = 0

    async def store(self, filename: str, body: AsyncIterator[bytes], declared: int | None = None) -> Path:
        """Writes an upload and returns the volume's path (a NIfTI file, or the folder of an unpacked series).

        Args:
            filename: the user's name for the file (its kind only).
            body: the upload's bytes, in chunks.
            declared: the size the request declares, if any (nothing is written when it is over the limit).

        Raises:
            DataError: not a NIfTI or zip file, over a size limit, or a zip that cannot be read.
        """
        suffix = upload_kind(filename)
        self.folder.mkdir(parents=True, exist_ok=True)
        self.count += 1
        folder = self.folder / str(self.count)
        folder.mkdir()
        target = folder / stored_name(filename, suffix)
        partial = target.with_name(target.name + PARTIAL_SUFFIX)
        try:
            size = 0
            oversized = declared is not None and declared > self.limits.max_bytes
            with partial.open("wb") as out:
                async for chunk in body:
                    size += len(chunk)
                    oversized = oversized or size > self.limits.max_bytes
                    # the rest is read and dropped: a browser shows the answer only once its upload is sent
                    if not oversized:
                        out.write(chunk)
            if oversized:
                raise self.too_large(filename)
            if size == 0:
                raise DataError(f"{shown_name(filename)} is empty")
            if suffix == ZIP_SUFFIX:
                return self.unpack(partial, target.with_suffix(""), filename)
            partial.rename(target)
            return target
        except BaseException:
            shutil.rmtree(folder, ignore_errors=True)
            raise
        finally:
            partial.unlink(missing_ok=True)

    def unpack(self, archive: Path, folder: Path, filename: str) -> Path:
        """Unpacks a zipped DICOM series into ``folder``, members flat under numbered names; returns ``folder``.

        Raises:
            DataError: not a zip file, an encrypted one, or one that unpacks to more than the limit.
        """
        partial = folder.with_name(folder.name + PARTIAL_SUFFIX)
        try:
            with zipfile.ZipFile(archive) as bundle:
                members = [m for m in bundle.infolist() if not m.is_dir() and not self.hidden(m.filename)]
                if not members:
                    raise DataError(f"{shown_name(filename)} holds no files")
                if sum(m.file_size for m in members) > self.limits.max_unpacked_bytes:
                    limit = self.limits.max_unpacked_bytes / MEGABYTE
                    raise DataError(f"{shown_name(filename)} unpacks to more than the {limit:g} MiB allowed")
                partial.mkdir()
                for number, member in enumerate(members):
                    with bundle.open(member) as source, (partial / MEMBER_NAME.format(number)).open("wb") as out:
                        shutil.copyfileobj(source, out)
            partial.rename(folder)
            return folder
        except (zipfile.BadZipFile, RuntimeError, NotImplementedError) as error:
            raise DataError(f"{shown_name(filename)} is not a readable zip file: {error}") from None
        finally:
            shutil.rmtree(partial, ignore_errors=True)

    @staticmethod
    def hidden(member: str) -> bool:
        """Whether a zip member is an operating system's metadata (``__MACOSX/``, ``.DS_Store``, ``._x``)."""
        parts = re.split(r"[\\/]", member)
        return parts[0] == "__MACOSX" or parts[-1].startswith(".")

    def too_large(self, filename: str) -> UploadTooLarge:
        """The error of an upload over the size limit."""
        limit = self.limits.max_bytes / MEGABYTE
        return UploadTooLarge(f"{shown_name(filename)} is larger than the {limit:g} MiB an upload may be")

    def remove(self, path: Path) -> None:
        """Deletes a stored upload (its numbered folder) that could not be opened."""
        if path.parent.parent == self.folder:
            shutil.rmtree(path.parent, ignore_errors=True)
