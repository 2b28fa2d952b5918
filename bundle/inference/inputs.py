"""What to read: the volumes named by ``--image`` as a datalist, and the loader that reads each one.

``--image`` is a NIfTI file, a folder of NIfTI files, or a folder holding one DICOM series. NIfTI
files are read with nibabel, everything else with ITK (DICOM series, ``.mha``, ``.nrrd``); each
datalist entry names its reader, so :class:`LoadInputd` can serve a mixed list.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from monai.config import KeysCollection
from monai.transforms import InvertibleTransform, MapTransform

from bundle.inference import keys as K
from bundle.inference.dialogue import read_dialogue
from bundle.inference.settings import question
from bundle.user_text import command_line_text
from common.errors import ConfigError, DataError
from transforms.dicom_series import DEFAULT_TOLERANCE, check_tolerance
from transforms.loading import DEFAULT_AXCODES, DEFAULT_READER, NIFTI_SUFFIXES, READERS, LoadVolumed, nifti_header_shape

NIFTI_READER = "nibabel"
SERIES_READER = "itk"
HIDDEN_PREFIX = "."
NO_IMAGE = "config 'image' is not set: pass --image with a NIfTI file, a folder of them or a DICOM series folder"


@dataclass(frozen=True)
class VolumeSource:
    """One volume to process.

    Attributes:
        path: the NIfTI file or the DICOM series folder.
        name: the name its outputs are written under.
        reader: ``nibabel`` or ``itk``.
    """

    path: Path
    name: str
    reader: str


def is_nifti(path: Path) -> bool:
    """Whether ``path`` names a NIfTI file (``.nii`` or ``.nii.gz``, any case)."""
    return path.name.lower().endswith(NIFTI_SUFFIXES)


def volume_name(path: Path) -> str:
    """The output name of a volume: the file name without .nii/.nii.gz (or its last suffix), or the folder name."""
    if path.is_dir():
        return path.resolve().name
    lower = path.name.lower()
    for suffix in sorted(NIFTI_SUFFIXES, key=len, reverse=True):
        if lower.endswith(suffix):
            return path.name[: -len(suffix)]
    return path.stem


def find_volumes(image: str | Path | None) -> list[VolumeSource]:
    """The volumes named by ``image``: one file, every NIfTI file of a folder, or a DICOM series folder.

    Raises:
        ConfigError: ``image`` is not set.
        DataError: ``image`` does not exist, a folder holds nothing readable, or two files of a folder
            would write outputs under the same name (e.g. ``a.nii`` and ``a.nii.gz``).
    """
    if image is None or not str(image).strip():
        raise ConfigError(NO_IMAGE)
    path = Path(image).expanduser()
    if not path.exists():
        raise DataError(f"image not found: {path}")
    if path.is_file():
        return [VolumeSource(path, volume_name(path), NIFTI_READER if is_nifti(path) else SERIES_READER)]
    return _folder_volumes(path)


def _folder_volumes(folder: Path) -> list[VolumeSource]:
    """Every NIfTI file of ``folder``, or the folder itself as one DICOM series when it holds none."""
    files = [p for p in folder.iterdir() if p.is_file()]
    # hidden files are never volumes (e.g. macOS "._x.nii.gz" metadata files)
    niftis = sorted(p for p in files if is_nifti(p) and not p.name.startswith(HIDDEN_PREFIX))
    if niftis:
        return _unique_names([VolumeSource(p, volume_name(p), NIFTI_READER) for p in niftis], folder)
    if not files:
        raise DataError(f"image folder {folder} holds no NIfTI files ({', '.join(NIFTI_SUFFIXES)}) and no DICOM series")
    return [VolumeSource(folder, volume_name(folder), SERIES_READER)]


def _unique_names(sources: list[VolumeSource], folder: Path) -> list[VolumeSource]:
    """``sources`` when their names differ; their outputs would overwrite each other otherwise."""
    seen: dict[str, Path] = {}
    for source in sources:
        if source.name in seen:
            raise DataError(
                f"image folder {folder}: {seen[source.name].name} and {source.path.name} would both write "
                f"outputs named {source.name!r}; keep one of them"
            )
        seen[source.name] = source.path
    return sources


def datalist(
    image: str | Path | None, query: Any, query_file: Any = None, dialogue: Any = None
) -> list[dict[str, Any]]:
    """Datalist entries (``image``, ``name``, ``reader``, ``query``) for the volumes named by ``image``.

    With ``dialogue`` (a dialogue file, :func:`bundle.inference.dialogue.read_dialogue`) each entry
    asks its questions in turn: ``dialogue`` holds them and ``query`` is the first.

    The question (:func:`bundle.inference.settings.question`: ``query_file``'s text, the command
    line's ``--query`` as typed, or ``query``) travels in each entry as data, as a prompt does in a
    data dictionary, so a datalist may also ask a different question per volume. An unset ``image``
    gives no entries, so the workflow can be built and its properties checked without inputs;
    running it needs them (:func:`require_volumes`).

    NIfTI headers are checked here (empty, non-NIfTI, 2D and 4D files), so a bad file stops the
    run before the model is built; damaged voxel data shows when the volume is loaded.

    Raises:
        ConfigError: ``query`` is missing while ``image`` is set, or given with ``dialogue``.
        DataError: see :func:`find_volumes`, :func:`transforms.loading.nifti_header_shape`, and an
            unreadable ``query_file`` or ``dialogue``.
    """
    if image is None:
        return []
    turns = None if dialogue is None else dialogue_questions(query_file, dialogue)
    text = question(query, query_file) if turns is None else turns[0]
    sources = find_volumes(image)
    for source in sources:
        if source.reader == NIFTI_READER:
            nifti_header_shape(source.path)
    entries = [
        {K.IMAGE: str(source.path), K.NAME: source.name, K.READER: source.reader, K.QUERY: text} for source in sources
    ]
    if turns is not None:
        for entry in entries:
            entry[K.DIALOGUE] = list(turns)
    return entries


def dialogue_questions(query_file: Any, dialogue: Any) -> list[str]:
    """The questions of the ``dialogue`` file (they replace a config's ``query``), refusing a ``query_file``
    or a command-line ``--query`` given beside it.

    Raises:
        ConfigError: a question was also given.
        DataError: see :func:`bundle.inference.dialogue.read_dialogue`.
    """
    if query_file is not None or command_line_text("query") is not None:
        raise ConfigError(
            "config 'dialogue' asks its own questions: give --dialogue or --query (--query_file), not both"
        )
    return read_dialogue(str(dialogue))


def require_volumes(entries: list[dict[str, str]]) -> list[dict[str, str]]:
    """Returns ``entries`` if there is something to process.

    Raises:
        ConfigError: the datalist is empty (``image`` was not set).
    """
    if not entries:
        raise ConfigError(NO_IMAGE)
    return entries


def input_folder(image: str | Path | None) -> str | None:
    """The folder holding the input (the image's folder, or ``image`` itself when it is a folder)."""
    if image is None:
        return None
    path = Path(image).expanduser()
    return str(path if path.is_dir() else path.parent)


class LoadInputd(MapTransform, InvertibleTransform):
    """Loads each entry's volume with the reader the entry names (:class:`transforms.loading.LoadVolumed`).

    The volume is reoriented to ``axcodes`` and the step recorded on it, so ``Invertd`` with this
    transform (or the preprocessing that holds it) brings predictions back to the file's grid.

    Args:
        keys: keys of the volume paths.
        reader_key: key of the reader name; entries without it use the default reader.
        axcodes: orientation the volumes are brought to (slicing assumes RAS for display).
        allow_missing_keys: do not fail when a key is absent.
        slice_spacing_tolerance: DICOM series: how far a slice may lie off a regular grid, as a fraction
            of the slice step (:mod:`transforms.dicom_series`).
    """

    def __init__(
        self,
        keys: KeysCollection,
        reader_key: str = K.READER,
        axcodes: str | None = DEFAULT_AXCODES,
        allow_missing_keys: bool = False,
        slice_spacing_tolerance: float = DEFAULT_TOLERANCE,
    ) -> None:
        super().__init__(keys, allow_missing_keys)
        self.reader_key = reader_key
        self.axcodes = axcodes
        self.slice_spacing_tolerance = check_tolerance(slice_spacing_tolerance)
        self._loaders: dict[str, LoadVolumed] = {}

    def loader(self, reader: str) -> LoadVolumed:
        """The (cached) loader for ``reader``; readers are built on first use (ITK is slow to import)."""
        if reader not in READERS:
            raise ConfigError(f"datalist entry '{self.reader_key}' must be one of {tuple(READERS)}, got {reader!r}")
        if reader not in self._loaders:
            self._loaders[reader] = LoadVolumed(
                self.keys,
                reader=reader,
                axcodes=self.axcodes,
                allow_missing_keys=self.allow_missing_keys,
                slice_spacing_tolerance=self.slice_spacing_tolerance,
            )
        return self._loaders[reader]

    def __call__(self, data: Mapping[Hashable, Any]) -> dict[Hashable, Any]:
        """Replaces each keyed path by its loaded, reoriented (C, X, Y, Z) volume.

        Raises:
            DataError: a path is missing or unreadable (names it).
        """
        return self.loader(data.get(self.reader_key, DEFAULT_READER))(data)

    def inverse(self, data: Mapping[Hashable, Any]) -> dict[Hashable, Any]:
        """Undoes the reorientation (the same for every reader)."""
        return self.loader(DEFAULT_READER).inverse(data)
