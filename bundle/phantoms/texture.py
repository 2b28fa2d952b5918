"""Noise-free CT intensity of one tissue in one structure: a mean, a linear shading and a smooth mottle.

The shading and the mottle are bounded, and the mean is drawn so that mean +- (shading + mottle)
stays inside the tissue's declared HU range: every noise-free voxel is within it by construction.
Both are functions of the patient-frame position, so the texture is the same whatever voxel
grid samples it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from bundle.phantoms.anatomy import TEXTURE_WAVELENGTH_MM, TEXTURE_WAVES, Tissue


@dataclass(frozen=True)
class Intensity:
    """HU as a function of position for one painted region.

    Attributes:
        mean_hu: the drawn mean.
        centre: where the shading is zero (the structure's centre).
        direction: unit direction in which the shading increases.
        shading_hu: shading amplitude.
        reach_mm: distance from ``centre`` at which the shading reaches its amplitude.
        wavevectors: ``(K, 3)`` angular wave numbers of the mottle (rad/mm).
        phases: ``(K,)`` wave phases.
        mottle_hu: mottle amplitude (the mean of K unit sines, scaled).
    """

    mean_hu: float
    centre: np.ndarray
    direction: np.ndarray
    shading_hu: float
    reach_mm: float
    wavevectors: np.ndarray
    phases: np.ndarray
    mottle_hu: float

    def __call__(self, points: np.ndarray) -> np.ndarray:
        """Noise-free HU at the ``(N, 3)`` patient-frame ``points``."""
        # Clipping keeps the shading bounded even for structures unbounded in z (vessels, spine).
        ramp = np.clip((points - self.centre) @ self.direction / self.reach_mm, -1.0, 1.0) * self.shading_hu
        mottle = np.sin(points @ self.wavevectors.T + self.phases).mean(axis=1) * self.mottle_hu
        return self.mean_hu + ramp + mottle


def draw_intensity(rng: np.random.Generator, tissue: Tissue, centre: np.ndarray, reach_mm: float) -> Intensity:
    """Draws the appearance of ``tissue`` in one structure centred at ``centre``.

    Args:
        rng: the volume's anatomy generator.
        tissue: the tissue's table entry.
        centre: the structure's centre (patient frame, mm).
        reach_mm: the structure's largest semi-axis, over which the shading develops.
    """
    lo, hi = tissue.hu
    margin = min(tissue.mottle_hu + tissue.shading_hu, (hi - lo) / 2.0)
    mean = rng.uniform(lo + margin, hi - margin)
    direction = rng.normal(size=3)
    direction /= np.linalg.norm(direction)
    wavelengths = rng.uniform(*TEXTURE_WAVELENGTH_MM, size=TEXTURE_WAVES)
    axes = rng.normal(size=(TEXTURE_WAVES, 3))
    axes /= np.linalg.norm(axes, axis=1, keepdims=True)
    return Intensity(
        mean_hu=float(mean),
        centre=np.asarray(centre, dtype=float),
        direction=direction,
        shading_hu=tissue.shading_hu,
        reach_mm=float(reach_mm),
        wavevectors=axes * (2.0 * np.pi / wavelengths)[:, None],
        phases=rng.uniform(0.0, 2.0 * np.pi, size=TEXTURE_WAVES),
        mottle_hu=tissue.mottle_hu,
    )
