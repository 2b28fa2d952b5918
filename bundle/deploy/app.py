"""``MediSeeApp``: the MONAI Deploy application graph.

NIfTI input (a file or a folder of them)::

    nifti_loader_op --volume--> medisee_reasoning_op --prediction--> nifti_mask_writer_op
                                                     --prediction--> result_writer_op

DICOM input (a folder holding a study)::

    dicom_loader_op --dicom_study_list--> series_selector_op --study_selected_series_list--> dicom_volume_op
    dicom_volume_op --volume--> medisee_reasoning_op --prediction--> nifti_mask_writer_op, result_writer_op,
                                                                     dicom_seg_writer_op

The volume carries the instances it was made of to the SEG writer.
"""

from __future__ import annotations

import sys
from typing import Any

from monai.deploy.conditions import CountCondition
from monai.deploy.core import Application, Operator

from bundle.deploy import ports
from bundle.deploy.dicom_inputs import DicomStudyLoaderOperator, DicomVolumeOperator, VolumeSeriesSelectorOperator
from bundle.deploy.model import MediSeeBundle
from bundle.deploy.nifti import NiftiVolumeLoaderOperator
from bundle.deploy.outputs import (
    DeployOutputLayout,
    DicomSegWriterOperator,
    NiftiMaskWriterOperator,
    ResultWriterOperator,
)
from bundle.deploy.reasoning import MediSeeReasoningOperator
from bundle.deploy.settings import AppSettings
from bundle.deploy.sources import InputKind

PROGRAM = "bundle.deploy"
ONE_SHOT = 1
"""A DICOM study is loaded once per run."""


class MediSeeApp(Application):
    """MediSee reasoning segmentation as a MONAI Deploy application.

    Args:
        settings: the checked run settings.
        args: further :class:`monai.deploy.core.Application` arguments.
        kwargs: further :class:`monai.deploy.core.Application` keyword arguments.
    """

    def __init__(self, settings: AppSettings, *args: Any, **kwargs: Any) -> None:
        self.settings = settings
        # the command line was parsed by MediSee: Holoscan gets none of it (it would take --config as its YAML)
        super().__init__([sys.executable, PROGRAM], *args, **kwargs)

    def compose(self) -> None:
        """Builds the graph for the input's kind: input operators -> reasoning -> output operators."""
        bundle = MediSeeBundle(self.settings.model)
        reasoning = MediSeeReasoningOperator(
            self, bundle=bundle, query=self.settings.query, name="medisee_reasoning_op"
        )
        dicom = self.settings.source.kind is InputKind.DICOM
        volumes = self.compose_dicom_input(bundle) if dicom else self.compose_nifti_input()
        self.add_flow(volumes, reasoning, {(ports.VOLUME, ports.VOLUME)})
        self.compose_outputs(reasoning, bundle, dicom)

    def compose_nifti_input(self) -> Operator:
        """The NIfTI reader, run once per volume; returns the operator that emits ``volume``."""
        volumes = self.settings.source.volumes
        once_each = CountCondition(self, len(volumes))
        return NiftiVolumeLoaderOperator(self, once_each, volumes=volumes, name="nifti_loader_op")

    def compose_dicom_input(self, bundle: MediSeeBundle) -> Operator:
        """The SDK's DICOM loader and series selector, then the volume by the bundle's series rules.

        Returns:
            the operator that emits ``volume``.
        """
        source = self.settings.source
        loader = DicomStudyLoaderOperator(
            self, CountCondition(self, ONE_SHOT), input_folder=source.path, name="dicom_loader_op"
        )
        selector = VolumeSeriesSelectorOperator(self, source=source.path, name="series_selector_op")
        volume = DicomVolumeOperator(
            self,
            source=source.volumes[0],
            slice_spacing_tolerance=bundle.slice_spacing_tolerance,
            name="dicom_volume_op",
        )
        self.add_flow(loader, selector, {(ports.DICOM_STUDIES, ports.DICOM_STUDIES)})
        self.add_flow(selector, volume, {(ports.SELECTED_SERIES, ports.SELECTED_SERIES)})
        return volume

    def compose_outputs(self, reasoning: Operator, bundle: MediSeeBundle, dicom: bool) -> None:
        """The writers of each prediction: NIfTI mask and result JSON, plus the DICOM SEG for DICOM input.

        Args:
            reasoning: the operator emitting ``prediction``.
            bundle: the bundle configs (weights and slice axis for the result JSON).
            dicom: whether the input is DICOM.
        """
        layout = DeployOutputLayout(self.settings.output_dir, self.settings.overwrite)
        writers = [
            NiftiMaskWriterOperator(self, layout=layout, name="nifti_mask_writer_op"),
            ResultWriterOperator(
                self, layout=layout, weights=bundle.weights, slice_axis=bundle.slice_axis, name="result_writer_op"
            ),
        ]
        if dicom:
            writers.append(DicomSegWriterOperator(self, layout=layout, name="dicom_seg_writer_op"))
        for writer in writers:
            self.add_flow(reasoning, writer, {(ports.PREDICTION, ports.PREDICTION)})
