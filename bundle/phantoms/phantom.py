"""One phantom volume from (seed, index): anatomy, scan geometry, rendering and its per-entry questions."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import nibabel as nib
import numpy as np

from bundle.phantoms.anatomy import LABELS, SCAN
from bundle.phantoms.geometry import draw_geometry
from bundle.phantoms.layout import Patient, draw_patient
from bundle.phantoms.questions import QuestionPool, entry_pools
from bundle.phantoms.questions.follow_ups import entry_dialogue_pools
from bundle.phantoms.render import render

DEFAULT_SHAPE = (96, 96, 32)
# Independent streams per volume: the anatomy does not change with the grid shape or the noise,
# and the split key (bundle.phantoms.dataset) does not change the volume.
ANATOMY_STREAM, SCAN_STREAM, NOISE_STREAM, SPLIT_STREAM, STREAMS = 0, 1, 2, 3, 4


@dataclass(frozen=True)
class Phantom:
    """A rendered phantom volume.

    Attributes:
        image: ``(X, Y, Z)`` int16 CT in HU; axis 2 is the axial (superior-inferior) axis.
        label: ``(X, Y, Z)`` uint8 label map, values from ``bundle.phantoms.LABELS``.
        affine: voxel index -> scanner RAS+ mm, shared by both arrays (never RAS-aligned).
        labels: the labels present in this volume, ``{value: name}`` (background excluded).
        questions: per-entry question pools (with their facts) for volume-specific findings.
        findings: the volume-specific facts, e.g. ``{"stomach content": "gas"}``.
        noise_sd: the scanner noise added to the image (HU).
        oblique: whether the voxel grid is rotated off the scanner axes.
        patient: the drawn anatomy (patient frame), for inspection.
    """

    image: np.ndarray
    label: np.ndarray
    affine: np.ndarray
    labels: Mapping[int, str]
    questions: Mapping[str, QuestionPool]
    findings: Mapping[str, str]
    noise_sd: float
    oblique: bool
    patient: Patient

    @property
    def prompts(self) -> dict[str, dict[str, list[str]]]:
        """The per-entry pools as dataset.json stores them (``{label: {long, short, ...}}``)."""
        return {name: pool.to_json() for name, pool in self.questions.items()}

    @property
    def dialogues(self) -> dict[str, list[dict]]:
        """The per-entry follow-ups as dataset.json stores them (``{label: [{question, target, explanation}]}``)."""
        return entry_dialogue_pools(self.findings, set(self.labels.values()))

    @property
    def orientation(self) -> tuple[str, str, str]:
        """nibabel axis codes of the voxel axes."""
        return tuple(nib.aff2axcodes(self.affine))


def volume_streams(seed: int, index: int) -> list[np.random.Generator]:
    """The volume's random streams: child ``index`` of ``SeedSequence(seed)``, split per concern.

    Volume ``index`` depends on nothing but ``(seed, index)``, so a dataset of n volumes is a
    prefix of a larger one with the same seed.
    """
    volume = np.random.SeedSequence(seed, spawn_key=(index,))
    return [np.random.default_rng(child) for child in volume.spawn(STREAMS)]


def generate_phantom(seed: int, index: int, shape: tuple[int, int, int] = DEFAULT_SHAPE) -> Phantom:
    """Generates volume ``index`` of the phantom series ``seed``.

    Args:
        seed: the series seed (non-negative).
        index: the volume's index in the series (non-negative).
        shape: voxels along (x, y, z); the field of view does not depend on it, only the spacing.
    """
    streams = volume_streams(seed, index)
    patient = draw_patient(streams[ANATOMY_STREAM])
    geometry = draw_geometry(streams[SCAN_STREAM], tuple(shape), patient.half_width)
    noise_sd = float(streams[NOISE_STREAM].uniform(*SCAN.noise_sd_hu))
    image, label = render(patient.layers, geometry, noise_sd, streams[NOISE_STREAM])
    present = {int(value): LABELS[int(value)] for value in np.unique(label) if value}
    return Phantom(
        image=image,
        label=label,
        affine=geometry.affine,
        labels=present,
        questions=entry_pools(patient.findings, set(present.values())),
        findings=dict(patient.findings),
        noise_sd=noise_sd,
        oblique=geometry.oblique,
        patient=patient,
    )
