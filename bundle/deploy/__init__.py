"""MediSee as a MONAI Deploy App SDK application (``python -m bundle.deploy``).

Input operators read a NIfTI file or folder (:class:`NiftiVolumeLoaderOperator`, keeping the
affine) or a DICOM study (the SDK's loader and series selector, then :class:`DicomVolumeOperator`,
which makes the volume by the bundle's DICOM series rules, :mod:`transforms.dicom_series`);
:class:`MediSeeReasoningOperator` loads the bundle once and answers the question on each volume
with the bundle's own inferer; output operators write the NIfTI mask on the input's grid, the
result JSON and, for DICOM input, a coded DICOM SEG referencing the images the volume was made of.
The graph is in :mod:`bundle.deploy.app`, the command line in :mod:`bundle.deploy.cli`.

Needs the ``deploy`` extra (``pip install -e ".[deploy]"``). Exports resolve lazily (PEP 562), so
the settings modules import without the SDK.
"""

from __future__ import annotations

from networks.lazy import lazy_exports

_EXPORTS = {
    "MediSeeApp": "bundle.deploy.app",
    "AppSettings": "bundle.deploy.settings",
    "DEFAULT_CONFIG_FILES": "bundle.deploy.settings",
    "NiftiVolumeLoaderOperator": "bundle.deploy.nifti",
    "DicomStudyLoaderOperator": "bundle.deploy.dicom_inputs",
    "VolumeSeriesSelectorOperator": "bundle.deploy.dicom_inputs",
    "DicomVolumeOperator": "bundle.deploy.dicom_inputs",
    "MediSeeReasoningOperator": "bundle.deploy.reasoning",
    "NiftiMaskWriterOperator": "bundle.deploy.outputs",
    "ResultWriterOperator": "bundle.deploy.outputs",
    "DicomSegWriterOperator": "bundle.deploy.outputs",
    "main": "bundle.deploy.cli",
}

__all__ = list(_EXPORTS)

__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
