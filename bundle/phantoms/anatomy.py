"""The phantom anatomy table: every HU value, size, position and probability the generator uses.

Coordinates are the patient frame in RAS+ millimetres, NIfTI's world convention: +x towards the
patient's Right, +y Anterior, +z Superior (so a left-sided organ has a smaller x than the midline).
The origin is the centre of the body outline at the level of the renal hila; the patient frame
is placed in the scanner by a translation only (see ``SCAN``). Every ``Range`` is drawn uniformly
per volume. In-plane organ sizes and body-relative offsets scale with the body's half-width
divided by ``REFERENCE_HALF_WIDTH_MM``, so organs keep their place in small and large patients.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

from bundle.phantoms.specs import Anchor, BodySpec, OrganSpec, Range, ScanSpec, Side, StomachContent, Tissue

REFERENCE_HALF_WIDTH_MM = 160.0
# What a reader calls bone or gas on CT; questions that claim either are checked against these.
BONE_HU = 400.0
GAS_HU = -500.0
TEXTURE_WAVES = 6
TEXTURE_WAVELENGTH_MM: Range = (12.0, 45.0)

TISSUES: Mapping[str, Tissue] = MappingProxyType({
    "skin": Tissue((20.0, 70.0), 5.0, 5.0),
    "subcutaneous fat": Tissue((-125.0, -75.0), 8.0, 6.0),
    "muscle": Tissue((30.0, 70.0), 6.0, 5.0),
    "visceral fat and bowel": Tissue((-110.0, 25.0), 40.0, 10.0),
    "cerebrospinal fluid": Tissue((0.0, 20.0), 2.0, 2.0),
    "liver parenchyma": Tissue((85.0, 140.0), 8.0, 6.0),
    "spleen parenchyma": Tissue((100.0, 145.0), 6.0, 5.0),
    "renal cortex": Tissue((150.0, 215.0), 8.0, 6.0),
    "renal medulla": Tissue((85.0, 130.0), 6.0, 4.0),
    "arterial blood": Tissue((165.0, 235.0), 4.0, 4.0),
    "venous blood": Tissue((95.0, 140.0), 4.0, 4.0),
    "cancellous bone": Tissue((230.0, 350.0), 20.0, 10.0),
    "cortical bone": Tissue((550.0, 900.0), 40.0, 20.0),
    "intervertebral disc": Tissue((70.0, 110.0), 5.0, 3.0),
    "gastric wall": Tissue((40.0, 85.0), 5.0, 3.0),
    "gastric fluid": Tissue((0.0, 25.0), 3.0, 2.0),
    "gastric gas": Tissue((-1000.0, -870.0), 20.0, 10.0),
    "bile": Tissue((0.0, 22.0), 3.0, 2.0),
    "hypodense lesion": Tissue((15.0, 55.0), 6.0, 3.0),
    "cyst fluid": Tissue((0.0, 15.0), 2.0, 1.0),
})  # fmt: skip

BODY = BodySpec(
    half_width_mm=(145.0, 180.0),
    half_depth_mm=(100.0, 125.0),
    skin_mm=(1.5, 3.0),
    fat_mm=(8.0, 30.0),
    muscle_mm=(6.0, 12.0),
    paraspinal_dx_mm=(28.0, 40.0),
    paraspinal_semi_mm=((18.0, 26.0), (16.0, 22.0)),
)

_KIDNEY_DETAIL = MappingProxyType({
    "cortex_mm": (5.0, 8.0),
    "hilum_depth": (0.75, 0.9),  # hilum notch centre, as a fraction of the semi-axis towards it
    "hilum_size": (0.4, 0.5),  # notch semi-axes as a fraction of the kidney's
})  # fmt: skip

LIVER = OrganSpec(
    "liver", 1, Side.RIGHT, ("liver parenchyma",), Anchor.BODY,
    offset=((0.28, 0.38), (-0.10, 0.10), (30.0, 50.0)),
    semi_axes_mm=((62.0, 78.0), (62.0, 80.0), (70.0, 90.0)),
    detail=MappingProxyType({
        "floor_fraction": (0.65, 0.8),  # inferior surface, below the centre, in z semi-axes
        "left_lobe_dx_mm": (-75.0, -55.0),  # left-lobe centre from the right-lobe centre
        "left_lobe_y": (0.15, 0.35),  # body fraction, like the right lobe's y
        "left_lobe_dz_mm": (0.0, 15.0),
        "left_lobe_semi_x_mm": (45.0, 60.0),
        "left_lobe_semi_y_mm": (28.0, 38.0),
        "left_lobe_semi_z_mm": (45.0, 60.0),
    }),
)  # fmt: skip
SPLEEN = OrganSpec(
    "spleen", 2, Side.LEFT, ("spleen parenchyma",), Anchor.BODY,
    offset=((-0.62, -0.50), (-0.35, -0.15), (35.0, 55.0)),
    semi_axes_mm=((18.0, 26.0), (40.0, 55.0), (40.0, 55.0)),
    yaw_deg=(20.0, 40.0),
    detail=MappingProxyType({
        "hilum_offset": (1.2, 1.4),  # medial concavity centre, in x semi-axes
        "hilum_size": (0.75, 0.9),  # concavity x semi-axis, in x semi-axes
    }),
)  # fmt: skip
RIGHT_KIDNEY = OrganSpec(
    "right kidney", 3, Side.RIGHT, ("renal cortex", "renal medulla"), Anchor.SPINE,
    offset=((12.0, 28.0), (-10.0, 10.0), (-55.0, -40.0)),
    semi_axes_mm=((22.0, 28.0), (27.0, 34.0), (45.0, 57.0)),
    yaw_deg=(10.0, 30.0), detail=_KIDNEY_DETAIL,
)  # fmt: skip
LEFT_KIDNEY = OrganSpec(
    "left kidney", 4, Side.LEFT, ("renal cortex", "renal medulla"), Anchor.SPINE,
    offset=((12.0, 28.0), (-10.0, 10.0), (-45.0, -30.0)),
    semi_axes_mm=((22.0, 28.0), (27.0, 34.0), (45.0, 57.0)),
    yaw_deg=(10.0, 30.0), detail=_KIDNEY_DETAIL,
)  # fmt: skip
AORTA = OrganSpec(
    "aorta", 5, Side.LEFT, ("arterial blood",), Anchor.SPINE,
    offset=((-22.0, -12.0), (1.0, 5.0), (0.0, 0.0)),
    semi_axes_mm=((9.0, 13.0), (9.0, 13.0), (0.0, 0.0)),
)  # fmt: skip
IVC = OrganSpec(
    "inferior vena cava", 6, Side.RIGHT, ("venous blood",), Anchor.SPINE,
    offset=((18.0, 32.0), (3.0, 12.0), (0.0, 0.0)),
    semi_axes_mm=((11.0, 16.0), (7.0, 11.0), (0.0, 0.0)),
)  # fmt: skip
SPINE = OrganSpec(
    "spine", 7, Side.MIDLINE, ("cancellous bone", "cortical bone", "intervertebral disc"), Anchor.BODY,
    offset=((-0.01, 0.01), (-0.50, -0.38), (0.0, 0.0)),
    semi_axes_mm=((18.0, 23.0), (15.0, 20.0), (0.0, 0.0)),  # vertebral body
    detail=MappingProxyType({
        "cortex_mm": (1.5, 3.0),
        "canal_radius_mm": (6.0, 8.0),
        "lamina_mm": (4.0, 6.0),
        "spinous_length_mm": (15.0, 25.0),
        "spinous_half_width_mm": (2.5, 4.0),
        "disc_period_mm": (27.0, 34.0),
        "disc_thickness_mm": (6.0, 10.0),
    }),
)  # fmt: skip
STOMACH = OrganSpec(
    "stomach", 8, Side.LEFT, ("gastric wall", "gastric fluid", "gastric gas"), Anchor.BODY,
    offset=((-0.42, -0.25), (0.10, 0.35), (30.0, 60.0)),
    semi_axes_mm=((35.0, 50.0), (28.0, 40.0), (35.0, 50.0)),
    yaw_deg=(-30.0, 30.0),
    detail=MappingProxyType({
        "wall_mm": (3.0, 5.0),
        "fluid_level": (-0.3, 0.3),  # air-fluid level, in y semi-axes from the centre
    }),
)  # fmt: skip
GALLBLADDER = OrganSpec(
    "gallbladder", 9, Side.RIGHT, ("bile",), Anchor.LIVER,
    offset=((-0.35, -0.15), (0.35, 0.6), (6.0, 15.0)),  # z: its lowest point above the liver floor
    semi_axes_mm=((12.0, 18.0), (12.0, 18.0), (22.0, 32.0)),
    yaw_deg=(-20.0, 20.0), probability=0.9,
)  # fmt: skip
LIVER_LESION = OrganSpec(
    "liver lesion", 10, Side.RIGHT, ("hypodense lesion",), Anchor.LIVER,
    offset=((-0.1, 0.5), (-0.4, 0.4), (0.0, 1.0)),  # z: fraction of the room between floor and centre
    semi_axes_mm=((9.0, 20.0), (9.0, 20.0), (9.0, 20.0)),
    probability=0.5,
    detail=MappingProxyType({"roundness": (0.85, 1.15), "floor_margin_mm": (8.0, 12.0)}),
)  # fmt: skip
RENAL_CYST = OrganSpec(
    "renal cyst", 11, Side.EITHER, ("cyst fluid",), Anchor.HOST,
    offset=((0.2, 0.6), (-0.3, 0.3), (-0.6, 0.6)),
    semi_axes_mm=((7.0, 14.0), (7.0, 14.0), (7.0, 14.0)),
    probability=0.4,
    detail=MappingProxyType({"roundness": (0.9, 1.1)}),
)  # fmt: skip

ORGANS: tuple[OrganSpec, ...] = (
    LIVER, SPLEEN, RIGHT_KIDNEY, LEFT_KIDNEY, AORTA, IVC, SPINE, STOMACH, GALLBLADDER, LIVER_LESION, RENAL_CYST,
)  # fmt: skip
LABELS: Mapping[int, str] = MappingProxyType({0: "background", **{spec.label: spec.name for spec in ORGANS}})
ORGAN_BY_NAME: Mapping[str, OrganSpec] = MappingProxyType({spec.name: spec for spec in ORGANS})

STOMACH_CONTENTS: Mapping[StomachContent, float] = MappingProxyType(
    {StomachContent.GAS: 0.3, StomachContent.FLUID: 0.4, StomachContent.GAS_AND_FLUID: 0.3}
)
# Keys of a patient's volume-specific findings (the per-entry prompt pools are built from them).
STOMACH_CONTENT_FINDING = "stomach content"
RENAL_CYST_SIDE_FINDING = "renal cyst side"

SCAN = ScanSpec(
    orientations=(("L", "P", "S"), ("L", "A", "S"), ("R", "P", "S"), ("L", "P", "I"), ("R", "A", "I")),
    oblique_probability=0.4,
    max_yaw_deg=8.0,
    max_tilt_deg=5.0,
    fov_margin=(1.08, 1.25),
    fov_z_mm=(190.0, 220.0),
    centre_z_mm=(-5.0, 10.0),
    patient_xy_mm=(-20.0, 20.0),
    centring_mm=(-8.0, 8.0),
    couch_z_mm=(-700.0, -300.0),
    noise_sd_hu=(4.0, 12.0),
    air_hu=-1000.0,
    hu_limits=(-1024.0, 3071.0),
)


def hu_range(spec: OrganSpec) -> Range:
    """The HU hull of an organ's tissues: where its noise-free voxels lie."""
    ranges = [TISSUES[name].hu for name in spec.tissues]
    return min(lo for lo, _ in ranges), max(hi for _, hi in ranges)
