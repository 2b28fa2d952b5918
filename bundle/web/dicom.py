"""A turn's DICOM SEG for a volume the page read from a DICOM series.

The SEG is the deploy app's (:class:`bundle.deploy.segmentation.SaveDicomSegd`: coded segment,
the series' patient and study, every source instance referenced), written next to the turn's
other outputs as ``NAME_turnK_seg.dcm``; the series' headers are read once, when the volume opens.
A turn that found nothing gets no SEG (a SEG holds at least one frame).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from bundle.deploy import ports
from bundle.deploy.dicom_source import DicomSource, folder_source
from bundle.deploy.segmentation import SEG_FILE, SEG_SUFFIX, SaveDicomSegd
from bundle.inference import keys as K
from bundle.inference.outputs import OutputLayout


class SegLayout(OutputLayout):
    """The inference outputs plus ``NAME_seg.dcm``."""

    def path(self, name: str, kind: str) -> Path:
        """The path of output ``kind`` of volume ``name``."""
        if kind == SEG_FILE:
            return self.output_dir / f"{name}{SEG_SUFFIX}"
        return super().path(name, kind)


class TurnSegWriter:
    """Writes each turn's DICOM SEG for one series.

    Args:
        folder: the series folder the volume was read from.
        tolerance: the reader's ``slice_spacing_tolerance`` (the same stack as the volume's).

    Raises:
        DataError: the folder's series is refused (as the reader refuses it).
    """

    def __init__(self, folder: Path, tolerance: float) -> None:
        self.source: DicomSource = folder_source(folder, tolerance)

    def __call__(self, turn: Mapping[str, Any], output_dir: Path) -> dict[str, Any]:
        """``turn`` with its SEG written and listed in ``output_files`` (unchanged when nothing was found)."""
        if not bool((torch.as_tensor(turn[K.PRED]) > 0).any()):
            return dict(turn)
        writer = SaveDicomSegd(SegLayout(output_dir))
        written = writer({**turn, ports.DICOM_SOURCE: self.source})
        written.pop(ports.DICOM_SOURCE)
        return written
