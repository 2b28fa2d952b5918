"""What the SEG's segment is, in codes viewers understand: the structure the question or the answer names.

The first known structure named in the question, else in the model's answer, gives the segment's
label, its SNOMED CT category and type (codes from ``pydicom.sr.codedict``, so from the DICOM
standard's context groups), a laterality modifier ("left kidney") and a recommended display colour.
An abnormality named with an organ ("liver lesion", "renal cyst") is typed as the abnormality, in
the category Morphologically Abnormal Structure, with the organ as its anatomic region. A question
that names nothing known gets the generic **Tissue / Tissue** (SCT 85756007), the default of 3D
Slicer's terminology, labelled "MediSee target".
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from pydicom.sr.codedict import codes
from pydicom.sr.coding import Code

ANATOMY = codes.SCT.AnatomicalStructure
ABNORMAL = codes.SCT.MorphologicallyAbnormalStructure
GENERIC_CATEGORY = codes.SCT.Tissue
GENERIC_TYPE = codes.SCT.Tissue
GENERIC_LABEL = "MediSee target"
GENERIC_RGB = (241, 214, 145)
LATERALITY = {"left": codes.SCT.Left, "right": codes.SCT.Right}

ORGANS: tuple[tuple[str, Code, tuple[int, int, int]], ...] = (
    (r"liver|hepatic", codes.SCT.Liver, (221, 130, 101)),
    (r"spleen|splenic", codes.SCT.Spleen, (157, 108, 162)),
    (r"kidneys?|renal", codes.SCT.Kidney, (185, 102, 83)),
    (r"pancreas|pancreatic", codes.SCT.Pancreas, (249, 180, 111)),
    (r"abdominal aorta", codes.SCT.AbdominalAorta, (224, 97, 76)),
    (r"aorta|aortic", codes.SCT.Aorta, (224, 97, 76)),
    (r"inferior vena cava|vena cava|ivc", codes.SCT.InferiorVenaCava, (0, 151, 206)),
    (r"portal vein", codes.SCT.PortalVein, (0, 151, 206)),
    (r"gall ?bladder", codes.SCT.Gallbladder, (139, 150, 98)),
    (r"(?:urinary )?bladder", codes.SCT.Bladder, (222, 154, 132)),
    (r"stomach|gastric", codes.SCT.Stomach, (216, 132, 105)),
    (r"o?esophagus|oesophageal|esophageal", codes.SCT.Esophagus, (211, 171, 143)),
    (r"duodenum|duodenal", codes.SCT.Duodenum, (255, 253, 229)),
    (r"small (?:intestine|bowel)", codes.SCT.SmallIntestine, (205, 167, 142)),
    (r"colon|large (?:intestine|bowel)", codes.SCT.Colon, (204, 168, 143)),
    (r"rectum|rectal", codes.SCT.Rectum, (204, 168, 143)),
    (r"adrenal glands?|adrenal", codes.SCT.AdrenalGland, (244, 214, 49)),
    (r"ureters?", codes.SCT.Ureter, (212, 147, 129)),
    (r"prostate", codes.SCT.Prostate, (230, 158, 140)),
    (r"uterus", codes.SCT.Uterus, (255, 181, 158)),
    (r"lungs?|pulmonary", codes.SCT.Lung, (197, 165, 145)),
    (r"heart|cardiac", codes.SCT.Heart, (206, 110, 84)),
    (r"trachea", codes.SCT.Trachea, (182, 228, 255)),
    (r"thyroid", codes.SCT.Thyroid, (220, 160, 120)),
    (r"brain", codes.SCT.Brain, (250, 250, 225)),
    (r"spinal cord", codes.SCT.SpinalCord, (244, 214, 49)),
    (r"spine|vertebral column", codes.SCT.Spine, (241, 213, 144)),
    (r"vertebrae?|vertebral body", codes.SCT.Vertebra, (241, 213, 144)),
    (r"ribs?", codes.SCT.Rib, (241, 213, 144)),
    (r"femur|femoral", codes.SCT.Femur, (241, 213, 144)),
    (r"bones?", codes.SCT.Bone, (241, 213, 144)),
    (r"muscles?", codes.SCT.Muscle, (192, 104, 88)),
)
"""(pattern, SNOMED CT type, RGB) of the organs and tissues; patterns match whole words, any case."""

ABNORMALITIES: tuple[tuple[str, Code, tuple[int, int, int]], ...] = (
    (r"tumou?rs?|neoplasms?|cancers?|carcinomas?|malignan\w*", codes.SCT.Neoplasm, (255, 128, 0)),
    (r"metastas[ie]s|metastatic", codes.SCT.Metastasis, (255, 128, 0)),
    (r"lesions?", codes.SCT.Lesion, (255, 200, 0)),
    (r"mass(?:es)?", codes.SCT.Mass, (255, 200, 0)),
    (r"cysts?|cystic", codes.SCT.Cyst, (128, 174, 255)),
    (r"nodules?", codes.SCT.Nodule, (255, 200, 0)),
    (r"abscess(?:es)?", codes.SCT.Abscess, (255, 200, 0)),
    (r"ha?emorrhages?|bleeds?|bleeding", codes.SCT.Hemorrhage, (188, 65, 28)),
)
"""(pattern, SNOMED CT type, RGB) of abnormal structures (category Morphologically Abnormal Structure)."""


@dataclass(frozen=True)
class Structure:
    """A segment's meaning: label, coded category and type, laterality, anatomic region, display colour.

    Attributes:
        label: Segment Label, e.g. "Left kidney".
        category: Segmented Property Category.
        type: Segmented Property Type.
        modifier: laterality of the type (SCT Left / Right), or None.
        region: the organ an abnormality lies in, or None.
        rgb: recommended display colour.
    """

    label: str
    category: Code
    type: Code
    modifier: Code | None = None
    region: Code | None = None
    rgb: tuple[int, int, int] = GENERIC_RGB


GENERIC = Structure(GENERIC_LABEL, GENERIC_CATEGORY, GENERIC_TYPE)


def _first(text: str, table: tuple[tuple[str, Code, tuple[int, int, int]], ...]) -> tuple[re.Match, Code, tuple] | None:
    """The earliest (then longest) match in ``text`` of a table's patterns, with its code and colour."""
    found = []
    for pattern, code, rgb in table:
        match = re.search(rf"\b(?:{pattern})\b", text, flags=re.IGNORECASE)
        if match:
            found.append((match.start(), -len(match.group(0)), match, code, rgb))
    if not found:
        return None
    _, _, match, code, rgb = min(found, key=lambda item: item[:2])
    return match, code, rgb


def _laterality(text: str, match: re.Match) -> Code | None:
    before = re.search(r"\b(left|right)\s+$", text[: match.start()], flags=re.IGNORECASE)
    return LATERALITY[before.group(1).lower()] if before else None


def structure_in(text: str) -> Structure | None:
    """The structure ``text`` names first, or None."""
    organ = _first(text, ORGANS)
    abnormality = _first(text, ABNORMALITIES)
    if abnormality is not None:
        match, code, rgb = abnormality
        region = organ[1] if organ is not None else None
        label = code.meaning if region is None else f"{region.meaning} {code.meaning.lower()}"
        return Structure(label, ABNORMAL, code, region=region, rgb=rgb)
    if organ is None:
        return None
    match, code, rgb = organ
    modifier = _laterality(text, match)
    label = code.meaning if modifier is None else f"{modifier.meaning} {code.meaning.lower()}"
    return Structure(label, ANATOMY, code, modifier=modifier, rgb=rgb)


def name_structure(query: str, answer: str | None = None) -> Structure:
    """The segment's structure: the one the question names, else the answer's, else :data:`GENERIC`."""
    for text in (query, answer):
        found = structure_in(text) if text else None
        if found is not None:
            return found
    return GENERIC
