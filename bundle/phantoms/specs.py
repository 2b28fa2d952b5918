"""The record types of the anatomy table (``bundle.phantoms.anatomy`` holds the values)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import Enum

Range = tuple[float, float]


class Side(str, Enum):
    """Which side of the patient's midline a structure lies on."""

    RIGHT = "right"
    LEFT = "left"
    MIDLINE = "midline"
    EITHER = "either"  # chosen per volume (a renal cyst's kidney)


class Anchor(str, Enum):
    """What an organ's ``offset`` is measured from.

    BODY: x, y are fractions of the body half-width/half-depth from the body centre; z is mm.
    SPINE: x is mm from the vertebral-body centre (kidneys: the gap beyond the vertebral body),
        y is mm from it (vessels: the gap in front of the vertebral body); z is mm.
    LIVER: x, y are fractions of the liver's right-lobe semi-axes from its centre; z is mm above
        the liver's inferior surface.
    HOST: x, y, z are fractions of the host organ's semi-axes from its centre (x: lateral).
    """

    BODY = "body"
    SPINE = "spine"
    LIVER = "liver"
    HOST = "host"


@dataclass(frozen=True)
class Tissue:
    """The CT appearance of one tissue.

    Attributes:
        hu: every noise-free voxel of the tissue lies in this range: the mean is drawn so that the
            shading and mottle added to it stay inside.
        mottle_hu: amplitude of the smooth texture (a few plane waves).
        shading_hu: amplitude of the linear intensity gradient across the structure.
    """

    hu: Range
    mottle_hu: float = 0.0
    shading_hu: float = 0.0


@dataclass(frozen=True)
class OrganSpec:
    """One labelled organ or lesion.

    Attributes:
        name: the label name (lower case, unique).
        label: its integer in the label map.
        side: where it lies relative to the midline.
        tissues: the tissues it is made of; its HU range is their hull.
        anchor: what ``offset`` is measured from.
        offset: per-axis ranges for the centre, in ``anchor``'s units.
        semi_axes_mm: per-axis semi-axis ranges (x, y scale with the body size).
        yaw_deg: rotation about the z axis (kidneys: how far the hilum turns anteriorly).
        probability: chance that a volume has it.
        detail: shape-specific ranges, named.
    """

    name: str
    label: int
    side: Side
    tissues: tuple[str, ...]
    anchor: Anchor
    offset: tuple[Range, Range, Range]
    semi_axes_mm: tuple[Range, Range, Range]
    yaw_deg: Range = (0.0, 0.0)
    probability: float = 1.0
    detail: Mapping[str, Range] = field(default_factory=dict)


@dataclass(frozen=True)
class BodySpec:
    """The body outline: an elliptic cylinder of skin, subcutaneous fat and muscle wall."""

    half_width_mm: Range
    half_depth_mm: Range
    skin_mm: Range
    fat_mm: Range
    muscle_mm: Range
    paraspinal_dx_mm: Range  # centre of each paraspinal muscle from the spinal canal
    paraspinal_semi_mm: tuple[Range, Range]


@dataclass(frozen=True)
class ScanSpec:
    """How a volume is acquired: grid orientation, field of view, position and noise."""

    orientations: tuple[tuple[str, str, str], ...]  # nibabel axis codes of the voxel axes
    oblique_probability: float
    max_yaw_deg: float  # in-plane rotation of an oblique grid
    max_tilt_deg: float  # gantry tilt (about the x axis) of an oblique grid
    fov_margin: Range  # in-plane field of view / body width
    fov_z_mm: Range
    centre_z_mm: Range  # scan centre in the patient frame
    patient_xy_mm: Range  # patient's x, y position in the scanner
    centring_mm: Range  # in-plane offset of the field-of-view centre from the body centre
    couch_z_mm: Range  # patient frame origin's z in the scanner
    noise_sd_hu: Range
    air_hu: float
    hu_limits: Range  # what int16 CT stores


class StomachContent(str, Enum):
    """What a stomach holds; with both, gas floats anterior to fluid in a supine patient."""

    GAS = "gas"
    FLUID = "fluid"
    GAS_AND_FLUID = "gas and fluid"
