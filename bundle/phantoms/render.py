"""Paints a patient into a voxel grid: CT image (HU, int16) and label map (uint8), slice by slice."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from bundle.phantoms.anatomy import SCAN
from bundle.phantoms.drawing import Layer
from bundle.phantoms.geometry import ScanGeometry


def paint(layers: Sequence[Layer], points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Noise-free HU and labels at patient-frame ``points``; later layers overwrite earlier ones."""
    hu = np.full(len(points), SCAN.air_hu)
    labels = np.zeros(len(points), dtype=np.uint8)
    z_low, z_high = points[:, 2].min(), points[:, 2].max()
    for layer in layers:
        low, high = layer.shape.z_range()
        if high < z_low or low > z_high:
            continue  # cannot reach this slice
        inside = layer.shape.contains(points)
        if layer.hosts:
            inside &= np.isin(labels, layer.hosts)
        hu[inside] = layer.intensity(points[inside])
        labels[inside] = layer.label
    return hu, labels


def render(
    layers: Sequence[Layer], geometry: ScanGeometry, noise_sd: float, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Samples the layers at every voxel centre and adds scanner noise.

    Rendering one axial slice at a time keeps memory at one slice of coordinates, whatever the shape.

    Returns:
        (image, label): int16 HU clipped to the CT range, and uint8 labels, both ``geometry.shape``.
    """
    image = np.empty(geometry.shape, dtype=np.int16)
    label = np.empty(geometry.shape, dtype=np.uint8)
    low, high = SCAN.hu_limits
    for k in range(geometry.shape[2]):
        points = geometry.slice_points(k) - geometry.patient_origin
        hu, labels = paint(layers, points)
        hu += rng.normal(0.0, noise_sd, size=hu.shape)
        image[:, :, k] = np.clip(np.rint(hu), low, high).reshape(geometry.shape[:2])
        label[:, :, k] = labels.reshape(geometry.shape[:2])
    return image, label
