"""The DICOM SEG output: the mask as a binary Segmentation (highdicom) of the instances the volume was made of.

highdicom copies the patient and study of the source instances into the SEG (so it joins the
source's StudyInstanceUID), lists every source instance in its references and ties each frame to
the instance (or, for an enhanced multi-frame source, the frame) it segments, with that image's own
position and orientation: a SEG of an unevenly spaced or tilted series places every frame where
its source slice lies. Frames without the target are left out (highdicom's default); a mask with no
target at all gives no SEG (a SEG needs a frame), which a warning says.

The segment is coded for viewers (:mod:`bundle.deploy.structures`): SNOMED CT category and type of
the structure the question or answer names, a recommended display colour, the question as its
description; the series is described as ``MediSee: <question>``.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import logging
import os
import socket
from collections.abc import Hashable, Mapping
from pathlib import Path
from typing import Any

import highdicom as hd
import torch
from pydicom.sr.codedict import codes

from bundle.deploy import ports
from bundle.deploy.dicom_source import DicomSource
from bundle.deploy.structures import Structure, name_structure
from bundle.inference import keys as K
from bundle.inference.outputs import OutputLayout
from bundle.inference.writers import VolumeWriter

logger = logging.getLogger(__name__)

SEG_FILE = "seg"
"""Output kind of the DICOM SEG (``OUT/NAME_seg.dcm``)."""
SEG_SUFFIX = "_seg.dcm"

DISTRIBUTION = "medisee-bundle"
UNKNOWN_VERSION = "unknown"
SEGMENT_NUMBER = 1
LONG_STRING_CHARS = 64
"""Longest value of a DICOM LO element (Series Description, Content Description, Segment Label)."""
SHORT_TEXT_MAX_CHARS = 1024
"""Longest value of a DICOM ST element (Segment Description holds the question)."""
SERIES_PREFIX = "MediSee: "
ALGORITHM_NAME = "MediSee"
MANUFACTURER = "MediSee bundle"
CONTENT_CREATOR = "MediSee^"
"""Content Creator Name (PN): a single-component name, made unambiguous by its trailing caret."""
CONTENT_LABEL = "MEDISEE"
SEG_SERIES_NUMBER = 901
"""Series number of the SEG; high, so viewers list it after the acquired series."""
SEG_INSTANCE_NUMBER = 1
DEVICE_SERIAL_ENV = "MEDISEE_DEVICE_SERIAL_NUMBER"
"""The deployment's own device serial number for its SEGs (e.g. the site's asset number)."""
MACHINE_ID = Path("/etc/machine-id")
SERIAL_DIGITS = 16


def software_version() -> str:
    """The installed bundle's version (written into the SEG's equipment and algorithm identification)."""
    try:
        return importlib.metadata.version(DISTRIBUTION)
    except importlib.metadata.PackageNotFoundError:
        return UNKNOWN_VERSION


def device_serial_number(environ: Mapping[str, str] = os.environ) -> str:
    """The SEG's Device Serial Number (Type 1 in a SEG): ``MEDISEE_DEVICE_SERIAL_NUMBER``, else this machine's.

    Without the setting, a stable identifier of the machine that ran the app: a hash of its
    ``/etc/machine-id`` (or of its host name), so SEGs made on one installation share it and no
    machine detail is written.
    """
    configured = environ.get(DEVICE_SERIAL_ENV, "").strip()
    if configured:
        return configured[:LONG_STRING_CHARS]
    try:
        identity = MACHINE_ID.read_text().strip()
    except OSError:
        identity = ""
    identity = identity or socket.gethostname()
    return hashlib.sha256(identity.encode()).hexdigest()[:SERIAL_DIGITS].upper()


class SegmentationBuilder:
    """Builds the binary DICOM SEG of one target over the images its volume was made of.

    Args:
        version: software version recorded in the SEG.
        serial_number: Device Serial Number (default :func:`device_serial_number`).
    """

    def __init__(self, version: str | None = None, serial_number: str | None = None) -> None:
        self.version = version or software_version()
        self.serial_number = serial_number or device_serial_number()

    def __call__(
        self, mask: torch.Tensor, source: DicomSource, query: str, answer: str | None = None
    ) -> hd.seg.Segmentation:
        """The SEG of a (1, X, Y, Z) mask on the source stack's grid (X = column, Y = row, Z = sorted slice).

        Raises:
            DataError: the mask does not match the stack.
        """
        sources = source.source_images()
        structure = name_structure(query, answer)
        seg = hd.seg.Segmentation(
            source_images=sources,
            pixel_array=source.frames(mask),
            segmentation_type=hd.seg.SegmentationTypeValues.BINARY,
            segment_descriptions=[self.segment(structure, query)],
            series_instance_uid=hd.UID(),
            series_number=SEG_SERIES_NUMBER,
            sop_instance_uid=hd.UID(),
            instance_number=SEG_INSTANCE_NUMBER,
            manufacturer=MANUFACTURER,
            manufacturer_model_name=ALGORITHM_NAME,
            software_versions=self.version,
            device_serial_number=self.serial_number,
            content_label=CONTENT_LABEL,
            content_description=f"{structure.label} segmented by MediSee"[:LONG_STRING_CHARS],
            content_creator_name=CONTENT_CREATOR,
            series_description=(SERIES_PREFIX + query)[:LONG_STRING_CHARS],
        )
        body_part = sources[0].get("BodyPartExamined")
        if body_part:
            seg.BodyPartExamined = body_part
        return seg

    def segment(self, structure: Structure, query: str) -> hd.seg.SegmentDescription:
        """The one segment: the structure's codes and colour, MediSee as the algorithm, the question attached."""
        description = hd.seg.SegmentDescription(
            segment_number=SEGMENT_NUMBER,
            segment_label=structure.label[:LONG_STRING_CHARS],
            segmented_property_category=structure.category,
            segmented_property_type=structure.type,
            algorithm_type=hd.seg.SegmentAlgorithmTypeValues.AUTOMATIC,
            algorithm_identification=hd.AlgorithmIdentificationSequence(
                name=ALGORITHM_NAME, family=codes.DCM.ArtificialIntelligence, version=self.version
            ),
            anatomic_regions=None if structure.region is None else [structure.region],
            display_color=hd.color.CIELabColor.from_rgb(*structure.rgb),
        )
        if structure.modifier is not None:
            (coded_type,) = description.SegmentedPropertyTypeCodeSequence
            coded_type.SegmentedPropertyTypeModifierCodeSequence = [hd.sr.CodedConcept.from_code(structure.modifier)]
        description.SegmentDescription = query[:SHORT_TEXT_MAX_CHARS]
        return description


class SaveDicomSegd(VolumeWriter):
    """Writes ``NAME_seg.dcm`` from the mask and its DICOM source (atomic, with the layout's overwrite rule).

    Args:
        layout: output paths and the overwrite rule (knows the ``seg`` kind).
        builder: makes the SEG dataset.
        keys: key of the (1, X, Y, Z) mask on the series' grid.
        source_key: key of the :class:`bundle.deploy.dicom_geometry.DicomSource`.
    """

    def __init__(
        self,
        layout: OutputLayout,
        builder: SegmentationBuilder | None = None,
        keys: str = K.PRED,
        source_key: str = ports.DICOM_SOURCE,
    ) -> None:
        super().__init__(layout, SEG_FILE, keys)
        self.builder = builder or SegmentationBuilder()
        self.source_key = source_key

    def __call__(self, data: Mapping[Hashable, Any]) -> dict[Hashable, Any]:
        if not bool((torch.as_tensor(data[K.PRED]) > 0).any()):
            logger.warning(
                "%s: no target found, so no DICOM SEG is written (a SEG holds at least one frame)", data[K.NAME]
            )
            return dict(data)
        return super().__call__(data)

    def write(self, path: Path, value: torch.Tensor, data: Mapping[Hashable, Any]) -> None:
        seg = self.builder(value, data[self.source_key], data[K.QUERY], data.get(K.ANSWER))
        seg.save_as(path)
