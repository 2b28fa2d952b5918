"""Loading CT/MR volumes (NIfTI files or DICOM series) as channel-first, reoriented MetaTensors.

The loader is MONAI's ``LoadImage`` (with ``NibabelReader``, whose voxel reordering is done by
:mod:`transforms.memory_order`, or ``ITKReader``) followed by
``Orientationd``. Both readers give a voxel -> world affine in RAS mm (ITK's LPS is converted by
MONAI), so volumes from either reader line up. The orientation step is recorded on the
MetaTensor, which is what lets model outputs go back to the file's own grid
(MONAI's ``Invertd`` with the loader, as the inference config does, or :meth:`LoadVolumed.inverse`).
"""

from __future__ import annotations

import contextlib
import gzip
import logging
import warnings
import zlib
from collections.abc import Hashable, Mapping
from pathlib import Path
from typing import Any

import nibabel as nib
import numpy as np
from monai.config import DtypeLike, KeysCollection
from monai.data import MetaTensor, NibabelReader
from monai.transforms import InvertibleTransform, LoadImage, MapTransform, Orientationd, reset_ops_id

from common.errors import ConfigError, DataError
from transforms.dicom_reader import DicomSeriesReader
from transforms.dicom_series import DEFAULT_TOLERANCE
from transforms.keys import IMAGE
from transforms.memory_order import c_order, read_c_order


class NibabelCOrderReader(NibabelReader):
    """MONAI's ``NibabelReader``, handing on the voxels already C-ordered (:func:`transforms.memory_order.c_order`).

    MONAI makes the file's Fortran-ordered array C-contiguous with numpy in one strided copy:
    ~0.8 s of a 512x512x200 volume, against ~0.2 s plane by plane; given a C-ordered array, that
    step costs nothing. Given a ``dtype``, the voxels are read slab by slab straight into a
    C-ordered array of that type (:func:`transforms.memory_order.read_c_order`), so the file's own
    array and its C-ordered copy never exist: for a 512x512x1000 int16 volume loaded as float32,
    1 GiB less at the peak. The file is then read, not memory-mapped, and kept open between slabs
    (a gzip stream is read once, front to back).

    Args:
        dtype: the voxels' type as loaded; None keeps the file's (then converted by MONAI).
        kwargs: ``NibabelReader`` arguments (passed on to ``nibabel.load``).
    """

    def __init__(self, dtype: DtypeLike = None, **kwargs: Any) -> None:
        if dtype is not None:
            kwargs = {"mmap": False, "keep_file_open": True, **kwargs}
        super().__init__(**kwargs)
        self.dtype = dtype

    def _get_array_data(self, img, filename):
        if self.to_gpu:
            return super()._get_array_data(img, filename)
        if self.dtype is not None:
            return read_c_order(img.dataobj, self.dtype)
        return c_order(super()._get_array_data(img, filename))


READERS = {"nibabel": NibabelCOrderReader, "itk": DicomSeriesReader}
"""Reader name -> MONAI image reader class (``itk``: MONAI's ``ITKReader`` with the DICOM series rules)."""

DEFAULT_READER = "nibabel"
DEFAULT_AXCODES = "RAS"
NIFTI_SUFFIXES = (".nii", ".nii.gz")
SPATIAL_DIMS = 3
ERROR_DETAIL_CHARS = 200
"""Longest library message quoted in a read error (some readers dump whole file lists)."""
GZIP_SUFFIX = ".gz"
GZIP_CHUNK = 1 << 20
ONE_VOLUME = 1
"""Channels of a loadable volume: a 4D file with more than one volume along its 4th axis is refused."""


UNUSED_READER_LOGGER = "monai.data.nvimgcodec_pydicom_plugin"
UNUSED_READER_WARNING = "NvImgCodecPydicomReader: nvImageCodec decoder plugin did not register"


@contextlib.contextmanager
def _unused_readers_quiet():
    """Silences MONAI's nvImageCodec notices while ``LoadImage`` is built.

    ``LoadImage`` instantiates every reader MONAI knows, even when given its reader; with pydicom
    installed that includes the nvImageCodec DICOM reader, which says on every machine without
    nvImageCodec (all CPU machines) that it cannot register: a notice about a reader never used here.
    """
    plugin_logger = logging.getLogger(UNUSED_READER_LOGGER)
    level = plugin_logger.level
    plugin_logger.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=UNUSED_READER_WARNING)
            yield
    finally:
        plugin_logger.setLevel(level)


def check_reader(reader: str) -> str:
    """Returns ``reader`` if it names a supported reader.

    Raises:
        ConfigError: naming the ``reader`` setting and the choices.
    """
    if reader not in READERS:
        raise ConfigError(f"setting 'reader' must be one of {tuple(READERS)}, got {reader!r}")
    return reader


def check_axcodes(axcodes: str | None) -> str | None:
    """Returns ``axcodes`` if it is None or a valid three-letter orientation such as ``"RAS"``.

    Raises:
        ConfigError: naming the ``axcodes`` setting.
    """
    if axcodes is None:
        return None
    valid = isinstance(axcodes, str) and len(axcodes) == SPATIAL_DIMS
    if valid:
        try:
            ornt = nib.orientations.axcodes2ornt(axcodes)
        except ValueError:
            valid = False
        else:
            # each world axis must appear once: "RRA" parses but is not an orientation
            valid = sorted(ornt[:, 0].tolist()) == list(range(SPATIAL_DIMS))
    if not valid:
        raise ConfigError(
            "setting 'axcodes' must be None or three letters, one from each of L/R, P/A, I/S (e.g. 'RAS'), "
            f"got {axcodes!r}"
        )
    return axcodes


class LoadVolumed(MapTransform, InvertibleTransform):
    """Loads volumes named by ``keys`` into (C, X, Y, Z) MetaTensors oriented to ``axcodes``.

    Accepts ``.nii`` / ``.nii.gz`` files (both readers) and, with ``reader="itk"``, DICOM series
    directories or any other format ITK reads. The MetaTensor carries the RAS affine, the
    file's ``original_affine`` and ``spatial_shape``, and the orientation step in its
    ``applied_operations``. Transform ids in that trace are reset (MONAI's ``reset_ops_id``,
    as ``PersistentDataset`` does), so the orientation can be undone by any loader instance or by
    ``Invertd``, also in another process.

    Args:
        keys: keys of the data dictionary holding the paths.
        reader: ``"nibabel"`` (NIfTI) or ``"itk"`` (NIfTI, DICOM series, other ITK formats).
        axcodes: target orientation (nibabel axis codes, e.g. ``"RAS"``); None keeps the file's.
        dtype: voxel type of the loaded arrays.
        allow_missing_keys: do not fail when a key is absent.
        slice_spacing_tolerance: for DICOM series (``itk``), how far a slice may lie off a regular grid,
            as a fraction of the slice step (:mod:`transforms.dicom_series`).

    Raises:
        ConfigError: ``reader``, ``axcodes`` or the tolerance is invalid.
    """

    def __init__(
        self,
        keys: KeysCollection,
        reader: str = DEFAULT_READER,
        axcodes: str | None = DEFAULT_AXCODES,
        dtype: DtypeLike = np.float32,
        allow_missing_keys: bool = False,
        slice_spacing_tolerance: float = DEFAULT_TOLERANCE,
    ) -> None:
        super().__init__(keys, allow_missing_keys)
        self.reader_name = check_reader(reader)
        self.axcodes = check_axcodes(axcodes)
        # the nibabel reader loads straight into the wanted dtype; ITK's hands MONAI its own array
        options = {"slice_spacing_tolerance": slice_spacing_tolerance} if reader == "itk" else {"dtype": dtype}
        self._reader = READERS[reader](**options)
        # the array LoadImage, one key at a time (not LoadImaged), so a failure names its own file
        with _unused_readers_quiet():
            self._load = LoadImage(reader=self._reader, image_only=True, ensure_channel_first=True, dtype=dtype)
        self._orient = None
        if self.axcodes is not None:
            # labels=None: orient in the MetaTensor's own space (RAS for both readers)
            self._orient = Orientationd(
                self.keys, axcodes=self.axcodes, labels=None, allow_missing_keys=allow_missing_keys
            )

    def __call__(self, data: Mapping[Hashable, Any]) -> dict[Hashable, Any]:
        """Replaces each path in ``data`` by its loaded, reoriented volume.

        Raises:
            DataError: a path is missing or unreadable, or holds no 3D volume (names the path).
        """
        d = dict(data)
        for key in self.key_iterator(d):
            d[key] = self.read(d[key])
        if self._orient is not None:
            d = self._orient(d)
        for key in self.key_iterator(d):
            reset_ops_id(d[key])
        return d

    def read(self, path: str | Path) -> MetaTensor:
        """Reads one volume as (C, X, Y, Z) in the file's own orientation.

        Raises:
            DataError: naming ``path`` when it is missing, unreadable or not a 3D volume.
        """
        path = check_image_path(path, self.reader_name)
        try:
            volume = self._load(path, reader=self._reader)
        except DataError:  # the DICOM series rules name the series and what is wrong with it
            raise
        except Exception as exc:  # readers raise many types (nibabel, ITK, gzip, OS errors)
            # the library's message for a cut-off download ("cannot work out file type") hides the cause
            detail = gzip_damage(path) or _short(exc)
            raise DataError(f"cannot read image {path} with the {self.reader_name} reader: {detail}") from None
        check_volume_shape(path, tuple(volume.shape[1:]), channels=volume.shape[0])
        return volume

    def inverse(self, data: Mapping[Hashable, Any]) -> dict[Hashable, Any]:
        """Undoes the orientation step on ``data`` (MetaTensors that carry the loader's trace)."""
        d = dict(data)
        return d if self._orient is None else self._orient.inverse(d)


def check_image_path(path: str | Path, reader: str) -> Path:
    """Checks that ``path`` exists and suits ``reader``; returns it as a Path.

    Raises:
        DataError: naming the path.
    """
    path = Path(path).expanduser()
    if not path.exists():
        raise DataError(f"image not found: {path}")
    if path.is_file() and path.stat().st_size == 0:
        raise DataError(f"image {path} is an empty file (0 bytes)")
    if path.is_dir() and reader != "itk":
        raise DataError(f"image {path} is a directory (a DICOM series?); load it with reader='itk'")
    if path.is_file() and reader == "nibabel" and not path.name.lower().endswith(NIFTI_SUFFIXES):
        suffixes = ", ".join(NIFTI_SUFFIXES)
        raise DataError(f"image {path} is not a NIfTI file ({suffixes}); use reader='itk' for other formats")
    return path


COLOUR_CHANNELS = {3: "RGB", 4: "RGBA"}
"""Channel counts of colour pictures (PNG, JPEG) as readers load them."""


def what_it_holds(spatial: tuple[int, ...], channels: int = ONE_VOLUME) -> str:
    """A person's words for data of ``spatial`` shape with ``channels``: "a 2D RGB image", "a 4D series" ..."""
    dims = len(spatial)
    if dims == 2:
        if channels in COLOUR_CHANNELS:
            return f"a 2D {COLOUR_CHANNELS[channels]} image"
        return "a 2D image" if channels == ONE_VOLUME else f"a 2D image with {channels} channels"
    if dims == SPATIAL_DIMS + 1:
        return f"a 4D series of {spatial[-1]} volumes"
    return f"{dims}D data"


def check_volume_shape(path: str | Path, spatial: tuple[int, ...], channels: int = ONE_VOLUME) -> tuple[int, ...]:
    """Returns ``spatial`` if it is the shape of one 3D volume.

    A file with a 4th axis of length 1 is one volume (the loader makes that axis the channel); a
    real 4D file (time series, vector field) holds several and is refused rather than guessed at.
    One-slice volumes (X, Y, 1) are valid.

    Args:
        path: the file, for the message.
        spatial: the spatial shape as loaded (channel removed).
        channels: the number of volumes along the file's 4th axis.

    Raises:
        DataError: naming ``path`` and its shape.
    """
    if len(spatial) != SPATIAL_DIMS:
        shape = spatial if channels == ONE_VOLUME else (*spatial, channels)
        raise DataError(
            f"image {path} is {what_it_holds(spatial, channels)} (it has shape {shape}); a 3D volume (X, Y, Z) is "
            "needed: a NIfTI file, or a folder holding one DICOM series"
        )
    if channels != ONE_VOLUME:
        raise DataError(
            f"image {path} is 4D with {channels} volumes of shape {spatial}; a single 3D volume is needed "
            "(extract one, e.g. one time point, first)"
        )
    return spatial


def nifti_header_shape(path: str | Path) -> tuple[int, ...]:
    """The (X, Y, Z) shape of a NIfTI file from its header alone (no voxel data is read).

    Catches missing, empty, non-NIfTI, 2D and multi-volume files before a long run starts;
    damage inside the voxel data shows only when the volume is loaded.

    Raises:
        DataError: naming the file.
    """
    path = check_image_path(path, DEFAULT_READER)
    try:
        shape = tuple(int(n) for n in nib.load(str(path)).shape)
    except Exception as exc:  # nibabel raises ImageFileError, gzip/zlib and OS errors
        raise DataError(
            f"cannot read image {path} with the nibabel reader: {gzip_damage(path) or _short(exc)}"
        ) from None
    extra = shape[SPATIAL_DIMS:]
    if len(shape) > SPATIAL_DIMS and all(n == ONE_VOLUME for n in extra[1:]):
        return check_volume_shape(path, shape[:SPATIAL_DIMS], channels=extra[0])
    return check_volume_shape(path, shape)


def gzip_damage(path: str | Path) -> str | None:
    """Why a ``.gz`` file cannot be decompressed (truncated, not gzip), or None when it is intact or not ``.gz``."""
    path = Path(path)
    if not path.is_file() or not path.name.lower().endswith(GZIP_SUFFIX):
        return None
    try:
        with gzip.open(path, "rb") as stream:
            while stream.read(GZIP_CHUNK):
                pass
    except EOFError:
        return "the gzip stream is truncated (an interrupted download or copy?)"
    except (OSError, zlib.error) as exc:
        return f"not a valid gzip file ({_short(exc)})"
    return None


def load_volume(
    path: str | Path, reader: str = DEFAULT_READER, axcodes: str | None = DEFAULT_AXCODES, dtype: DtypeLike = np.float32
) -> MetaTensor:
    """Loads one volume with :class:`LoadVolumed` (same arguments); returns the (C, X, Y, Z) MetaTensor."""
    return LoadVolumed(IMAGE, reader=reader, axcodes=axcodes, dtype=dtype)({IMAGE: path})[IMAGE]


def _short(exc: BaseException) -> str:
    """First line of a library error, shortened for a one-line message."""
    lines = str(exc).strip().splitlines()
    text = lines[0] if lines else ""
    if len(text) > ERROR_DETAIL_CHARS:
        text = text[:ERROR_DETAIL_CHARS] + "..."
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
