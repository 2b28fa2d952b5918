"""Keys of the per-volume dictionaries that flow through the inference workflow.

A datalist entry (:func:`bundle.inference.inputs.datalist`) holds :data:`IMAGE`, :data:`NAME`,
:data:`READER` and :data:`QUERY` (and :data:`DIALOGUE` for a dialogue: each of its turns then
becomes an entry of its own, with :data:`TURN` and :data:`DIALOGUE_NAME`); the inferer adds
:data:`PRED`, :data:`SLICES`, :data:`ANSWER`, :data:`ANSWER_RAW` and :data:`ANSWER_SLICE`;
postprocessing adds :data:`RESULT` and :data:`OUTPUT_FILES`.
"""

from __future__ import annotations

from monai.utils import CommonKeys

IMAGE = CommonKeys.IMAGE
"""The volume: a path in the datalist, the loaded (C, X, Y, Z) MetaTensor after preprocessing."""

PRED = CommonKeys.PRED
"""The (1, X, Y, Z) uint8 target mask: on the loaded grid from the inferer, on the file's after ``Invertd``."""

LOADED_PRED = "pred_loaded"
"""A session turn's mask on the loaded grid (RAS), kept after ``Invertd`` has brought :data:`PRED` to the file's."""

NAME = "name"
"""Volume name used for output files: the file name without .nii/.nii.gz, or the DICOM folder's name."""

READER = "reader"
"""Reader for the volume: ``nibabel`` (NIfTI files) or ``itk`` (DICOM series and other formats)."""

QUERY = "query"
"""The user's question."""

DIALOGUE = "dialogue"
"""The questions of a dialogue about the volume, in order (:mod:`bundle.inference.dialogue`)."""

TURN = "turn"
"""The turn number (from 1) of a dialogue turn's entry."""

DIALOGUE_NAME = "dialogue_name"
"""The volume name of a dialogue turn's entry (its :data:`NAME` is ``NAME_turnK``)."""

SLICES = "slices"
"""Per-slice predictions (:class:`bundle.inference.inferer.SlicePrediction`) of slices holding the target."""

PREDICTIONS = "predictions"
"""Per-slice predictions of every slice processed (their presence scores go into the result)."""

ANSWER = "answer"
"""The answer a person reads (:mod:`bundle.inference.wording`: no candidate tokens), or None when generation is off."""

ANSWER_RAW = "answer_raw"
"""The model's generated text as it wrote it, tokens included, or None when generation is off."""

ANSWER_SLICE = "answer_slice"
"""Index of the slice the answer was generated on, or None."""

RESULT = "result"
"""The JSON-ready description of the target (slice boxes, 3D box, volume)."""

OUTPUT_FILES = "output_files"
"""Output kind -> path of each file written for the volume."""

MASK_FILE = "mask"
RESULT_FILE = "result"
OVERLAY_FILE = "overlay"
OUTPUT_SUFFIXES = {MASK_FILE: "_mask.nii.gz", RESULT_FILE: "_result.json", OVERLAY_FILE: "_overlay.png"}
"""Output kind -> file name suffix after the volume name (``OUT/NAME_mask.nii.gz`` ...)."""

DIALOGUE_FILE = "dialogue"
DIALOGUE_SUFFIX = "_dialogue.json"
"""``OUT/NAME_dialogue.json``: the summary of a dialogue's turns."""
