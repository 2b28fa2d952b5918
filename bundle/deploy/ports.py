"""Names of the operators' ports and of the entries the app adds to the bundle's data dictionaries.

Messages between MediSee operators are the bundle's per-volume dictionaries
(:mod:`bundle.inference.keys`): a ``volume`` holds ``image`` (a (1, X, Y, Z) MetaTensor on the
input's own grid, RAS affine) and ``name``; a ``prediction`` adds ``query``, ``pred`` (the mask on
that grid), ``slices``, ``answer``, ``answer_slice`` and ``result``; DICOM volumes also carry their
``dicom_source``. The DICOM ports keep the SDK's own names, so its operators plug in unchanged.
"""

from __future__ import annotations

VOLUME = "volume"
"""A volume to answer the question on (input operators -> reasoning operator)."""

PREDICTION = "prediction"
"""The reasoning operator's result for one volume (-> output operators)."""

DICOM_STUDIES = "dicom_study_list"
"""The SDK DICOM loader's studies."""

SELECTED_SERIES = "study_selected_series_list"
"""The SDK series selector's choice (-> DICOM volume operator)."""

DICOM_SOURCE = "dicom_source"
"""Data dictionary entry: the :class:`bundle.deploy.dicom_source.DicomSource` a volume was made of (for the SEG)."""
