"""Postprocessing writers: the mask (NIfTI), the result (JSON) and the overlay (PNG) of each volume.

Every file is written under a temporary name and renamed into place (``common.files``), so an
interrupted run never leaves a half-written output, and existing outputs are replaced only with
``overwrite`` (:class:`bundle.inference.outputs.OutputLayout`). Each writer records its path in
``output_files``.
"""

from __future__ import annotations

import gzip
import json
import logging
import os
from abc import abstractmethod
from collections.abc import Hashable, Mapping
from pathlib import Path
from typing import Any

import nibabel as nib
import numpy as np
import torch
from monai.data import MetaTensor
from monai.transforms import MapTransform
from PIL import Image

from bundle.inference import keys as K
from bundle.inference.inferer import SlicePrediction
from bundle.inference.outputs import OutputLayout
from bundle.inference.overlay import TileRenderer, choose_tiles, compose_montage
from common.files import atomic_path, usual_permissions
from transforms.dicom_reader import SLICE_ORIGINS, TILT_DEGREES
from transforms.keys import FILENAME
from transforms.memory_order import fortran_order
from transforms.shear import unshear
from transforms.slicing import CHANNEL_DIMS, SPATIAL_AXES, check_axis, in_plane_axes, take_slices

logger = logging.getLogger(__name__)

NIFTI_XFORM_SCANNER = 1
"""NIfTI ``sform_code`` / ``qform_code`` for scanner-anatomical coordinates (DICOM input)."""
QFORM_FIELDS = ("quatern_b", "quatern_c", "quatern_d", "qoffset_x", "qoffset_y", "qoffset_z", "pixdim")
"""The NIfTI header fields of the qform (``pixdim[0]`` is its handedness), as MONAI's nibabel reader keeps them."""
JSON_INDENT = 2
COORDINATES = {
    "box_voxel": "continuous voxel indices of the input file, voxel centres at integers (DICOM: column, row, slice)",
    "box_world": "RAS millimetres (x to the patient's right, y anterior, z superior), axis-aligned [[min], [max]]",
    "to_dicom_lps": "negate x and y: LPS = (-x, -y, z)",
}
"""How the result json's coordinates are to be read (written into every result)."""


class VolumeWriter(MapTransform):
    """Writes one output file per volume from the value under ``keys``; subclasses say how (:meth:`write`).

    The file is claimed from the layout (overwrite rule), written under a temporary name, given
    the usual permissions and renamed into place; its path is added to ``output_files``.

    Args:
        layout: output paths and the overwrite rule.
        kind: output kind (:data:`bundle.inference.keys.OUTPUT_SUFFIXES`).
        keys: key of the value to write.
        name_key: key of the volume name.
    """

    def __init__(self, layout: OutputLayout, kind: str, keys: str, name_key: str = K.NAME) -> None:
        super().__init__(keys)
        self.layout, self.kind, self.name_key = layout, kind, name_key

    def __call__(self, data: Mapping[Hashable, Any]) -> dict[Hashable, Any]:
        d = dict(data)
        for key in self.key_iterator(d):
            path = self.layout.claim(d[self.name_key], self.kind)
            with atomic_path(path) as tmp:
                self.write(tmp, d[key], d)
                usual_permissions(tmp)  # writers may replace the temporary file
            # a new dict: volumes of one batch must not share it
            d[K.OUTPUT_FILES] = {**d.get(K.OUTPUT_FILES, {}), self.kind: str(path)}
        return d

    @abstractmethod
    def write(self, path: Path, value: Any, data: Mapping[Hashable, Any]) -> None:
        """Writes ``value`` (with the volume's other entries in ``data``) to ``path``."""


MASK_GZIP_LEVEL = 1
"""nibabel's own level for ``.nii.gz``. gzip's default (9) is over 20x slower on a speckled mask
(5.2 s vs 0.2 s for a 512x512x200 mask with 2 % scattered voxels) for a file half the size."""


def source_meta(data: Mapping[Hashable, Any], image_key: str = K.IMAGE) -> Mapping[str, Any]:
    """The loaded image's metadata (reader fields such as the NIfTI header, DICOM slice origins), or {}."""
    image = data.get(image_key)
    return image.meta if isinstance(image, MetaTensor) else {}


def _code(meta: Mapping[str, Any], key: str) -> int | None:
    try:
        return int(np.asarray(meta[key]))
    except (KeyError, TypeError, ValueError):
        return None


def transform_codes(meta: Mapping[str, Any]) -> tuple[int, int]:
    """(sform_code, qform_code) of the input NIfTI header, or scanner-anatomical for inputs without one (DICOM)."""
    sform, qform = _code(meta, "sform_code"), _code(meta, "qform_code")
    if sform is None or qform is None:
        return NIFTI_XFORM_SCANNER, NIFTI_XFORM_SCANNER
    return sform, qform


def source_qform(meta: Mapping[str, Any]) -> np.ndarray | None:
    """The input NIfTI's own qform matrix (it may differ from the sform that gave the affine), or None."""
    if any(field not in meta for field in QFORM_FIELDS):
        return None
    header = nib.Nifti1Header()
    for field in QFORM_FIELDS:
        header[field] = np.asarray(meta[field])
    header["qform_code"] = NIFTI_XFORM_SCANNER  # any code: get_qform reads the fields only when one is set
    return header.get_qform()


class SaveMaskd(VolumeWriter):
    """Writes the (1, X, Y, Z) mask as ``NAME_mask.nii.gz``: uint8 0/1 on the input file's grid.

    The grid is the file's shape and affine, with the input's sform/qform codes (and its own qform
    when it has one). Two DICOM cases differ, both said in a warning: a tilted (sheared) series is
    resampled onto an unsheared grid, which ITK and 3D Slicer read as nibabel does
    (:mod:`transforms.shear`); an unevenly spaced one gets no NIfTI mask, since a NIfTI grid is
    regular (its slices' true positions are in the result json, and in the deploy app's DICOM SEG).

    Args:
        layout: output paths and the overwrite rule.
        keys: key of the mask, already on the input file's grid.
        image_key: key of the loaded image (its metadata tells the input's header and geometry).
    """

    def __init__(self, layout: OutputLayout, keys: str = K.PRED, image_key: str = K.IMAGE) -> None:
        super().__init__(layout, K.MASK_FILE, keys)
        self.image_key = image_key

    def __call__(self, data: Mapping[Hashable, Any]) -> dict[Hashable, Any]:
        if source_meta(data, self.image_key).get(SLICE_ORIGINS) is not None:
            logger.warning(
                "%s: no NIfTI mask written: its DICOM slices are unevenly spaced and a NIfTI grid is regular; the "
                "result json (and the deploy app's DICOM SEG) place each slice at its own position",
                data[self.name_key],
            )
            return dict(data)
        return super().__call__(data)

    def write(self, path: Path, value: MetaTensor, data: Mapping[Hashable, Any]) -> None:
        meta = source_meta(data, self.image_key)
        tilt = float(meta.get(TILT_DEGREES, 0.0) or 0.0)
        if tilt > 0:
            value = unshear(value)
            logger.warning(
                "%s: the DICOM series is tilted %.1f degrees, and ITK and 3D Slicer drop a sheared NIfTI affine: the "
                "NIfTI mask is resampled onto an unsheared grid of shape %s (each voxel takes the nearest source "
                "pixel); the result json keeps the series' own voxel indices",
                data[self.name_key],
                tilt,
                tuple(value.shape[1:]),
            )
        # streamed: nibabel writes plane by plane into the gzip stream, so the file never sits in memory
        with (
            path.open("wb") as raw,
            gzip.GzipFile(filename="", mode="wb", fileobj=raw, compresslevel=MASK_GZIP_LEVEL) as out,
        ):
            self.nifti(value, meta).to_stream(out)

    @staticmethod
    def nifti(mask: MetaTensor, meta: Mapping[str, Any] | None = None) -> nib.Nifti1Image:
        """The mask as a NIfTI image: sform = its affine, qform = the input's own or the affine, the input's codes."""
        meta = meta or {}
        # NIfTI stores Fortran order: handing nibabel such an array spares it a one-core transposing copy;
        # binarised plane by plane on the way, so no volume-sized temporary
        array = fortran_order(mask.as_tensor()[0], dtype=torch.uint8, transform=lambda plane: plane > 0)
        affine = mask.affine.detach().cpu().numpy().astype(np.float64)
        sform_code, qform_code = transform_codes(meta)
        qform = source_qform(meta) if qform_code else None
        image = nib.Nifti1Image(array, affine)
        image.set_sform(affine, code=sform_code)
        image.set_qform(affine if qform is None else qform, code=qform_code)
        return image


class SaveResultd(VolumeWriter):
    """Writes ``NAME_result.json``: the query, the answer, the target description and the weights used.

    Args:
        layout: output paths and the overwrite rule.
        weights: the ``llava_path``, ``medsam_path`` and ``checkpoint`` settings that produced the result.
        slice_axis: the axis slice indices refer to (of the volume reoriented to RAS).
        keys: key of the description from :class:`bundle.inference.DescribeTargetd`.
    """

    def __init__(
        self, layout: OutputLayout, weights: Mapping[str, Any], slice_axis: int = 2, keys: str = K.RESULT
    ) -> None:
        super().__init__(layout, K.RESULT_FILE, keys)
        # absolute: the json stays true when read from another working directory
        self.weights = {name: None if value is None else os.path.abspath(value) for name, value in weights.items()}
        self.slice_axis = check_axis(slice_axis)

    def write(self, path: Path, value: Mapping[str, Any], data: Mapping[Hashable, Any]) -> None:
        path.write_text(json.dumps(self.document(data, value), indent=JSON_INDENT) + "\n")

    def document(self, data: Mapping[Hashable, Any], result: Mapping[str, Any]) -> dict[str, Any]:
        """The JSON document of one volume."""
        source = data[K.IMAGE].meta.get(FILENAME) if isinstance(data[K.IMAGE], MetaTensor) else None
        return {
            "image": str(source) if source else None,
            "query": data[K.QUERY],
            "answer": data[K.ANSWER],
            "answer_raw": data.get(K.ANSWER_RAW),
            "answer_slice": data[K.ANSWER_SLICE],
            "slice_axis": self.slice_axis,
            "coordinates": COORDINATES,
            **result,
            "weights": self.weights,
        }


class SaveOverlayd(VolumeWriter):
    """Writes ``NAME_overlay.png``: the target slices (or a few evenly spaced ones) with mask and box.

    Runs before the mask is inverted: tiles are drawn on the loaded (RAS) grid the model saw.
    The caption is the answer, or the query when there is no answer.

    Args:
        layout: output paths and the overwrite rule.
        slice_axis: the axis the slices were taken along.
        keys: key of the (1, X, Y, Z) mask on the loaded grid.
        image_key: key of the preprocessed (C, X, Y, Z) volume (intensities in [0, 1]).
    """

    def __init__(self, layout: OutputLayout, slice_axis: int = 2, keys: str = K.PRED, image_key: str = K.IMAGE) -> None:
        super().__init__(layout, K.OVERLAY_FILE, keys)
        self.slice_axis = check_axis(slice_axis)
        self.image_key = image_key

    def write(self, path: Path, value: torch.Tensor, data: Mapping[Hashable, Any]) -> None:
        montage = self.render(data[self.image_key], value, data[K.SLICES], data[K.ANSWER] or data[K.QUERY])
        montage.save(path, format="PNG")

    def render(
        self, volume: MetaTensor, mask: torch.Tensor, slices: list[SlicePrediction], caption: str
    ) -> Image.Image:
        """The montage of one volume: its first channel and mask on the chosen slices, with their boxes."""
        boxes = {p.index: p.box for p in slices}
        renderer = TileRenderer(self.spacing(volume))
        indices = choose_tiles(sorted(boxes), volume.shape[CHANNEL_DIMS + self.slice_axis])
        images, targets = (take_slices(v, self.slice_axis, indices)[:, 0] for v in (volume, mask))
        tiles = [
            renderer(image, target, boxes.get(index), f"slice {index}")
            for index, image, target in zip(indices, images, targets)
        ]
        return compose_montage(tiles, caption)

    def spacing(self, volume: MetaTensor) -> tuple[float, float]:
        """(row, column) spacing in mm of the slices, from the volume's affine."""
        spatial = len(SPATIAL_AXES)
        linear = torch.as_tensor(volume.affine, dtype=torch.float64)[:spatial, :spatial]
        lengths = torch.linalg.norm(linear, dim=0)  # voxel size along each axis, also for oblique grids
        rows, columns = in_plane_axes(self.slice_axis)
        return float(lengths[rows]), float(lengths[columns])
