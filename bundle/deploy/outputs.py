"""Output operators: the NIfTI mask, the result JSON and, for DICOM input, the DICOM SEG.

Each operator hands the prediction to a bundle writer transform
(:class:`bundle.inference.writers.VolumeWriter`), so files are named, refused or replaced and
written atomically (``common.files.atomic_path``) exactly as by ``monai.bundle run``.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from monai.deploy.core import Fragment, Operator, OperatorSpec

from bundle.deploy import ports
from bundle.deploy.segmentation import SEG_FILE, SEG_SUFFIX, SaveDicomSegd
from bundle.inference import SaveMaskd, SaveResultd
from bundle.inference import keys as K
from bundle.inference.outputs import OutputLayout
from bundle.inference.summary import describe_volume
from bundle.inference.writers import VolumeWriter


class DeployOutputLayout(OutputLayout):
    """The app's outputs per volume ``NAME``: ``NAME_mask.nii.gz``, ``NAME_result.json`` and ``NAME_seg.dcm``.

    The overlay PNG of ``monai.bundle run`` is not an app output; a DICOM SEG is.

    Args:
        output_dir: folder for all outputs.
        overwrite: replace existing outputs instead of refusing to run.
    """

    SUFFIXES = {
        K.MASK_FILE: K.OUTPUT_SUFFIXES[K.MASK_FILE],
        K.RESULT_FILE: K.OUTPUT_SUFFIXES[K.RESULT_FILE],
        SEG_FILE: SEG_SUFFIX,
    }

    def path(self, name: str, kind: str) -> Path:
        """The path of output ``kind`` (``mask``, ``result`` or ``seg``) for volume ``name``."""
        return self.output_dir / f"{name}{self.SUFFIXES[kind]}"

    def paths(self, name: str) -> dict[str, Path]:
        """Every output path of volume ``name``, by kind (checked before the run starts)."""
        return {kind: self.path(name, kind) for kind in self.SUFFIXES}


class PredictionWriterOperator(Operator):
    """Writes one file per received prediction with a bundle writer.

    Named input:
        prediction: the reasoning operator's dictionary.

    Args:
        fragment: the application.
        writer: the writer transform (claims the path, writes atomically).
    """

    def __init__(self, fragment: Fragment, *args: Any, writer: VolumeWriter, **kwargs: Any) -> None:
        self.writer = writer
        super().__init__(fragment, *args, **kwargs)

    def setup(self, spec: OperatorSpec) -> None:
        spec.input(ports.PREDICTION)

    def compute(self, op_input: Any, op_output: Any, context: Any) -> None:
        """Writes the received prediction."""
        self.writer(op_input.receive(ports.PREDICTION))


class NiftiMaskWriterOperator(PredictionWriterOperator):
    """Writes ``NAME_mask.nii.gz``: uint8 0/1 with exactly the input's shape and affine.

    Args:
        fragment: the application.
        layout: output paths and the overwrite rule.
    """

    def __init__(self, fragment: Fragment, *args: Any, layout: OutputLayout, **kwargs: Any) -> None:
        super().__init__(fragment, *args, writer=SaveMaskd(layout), **kwargs)


class ResultWriterOperator(PredictionWriterOperator):
    """Writes ``NAME_result.json`` (query, answer, slice boxes, 3D box, volume, weights) and prints a summary.

    Args:
        fragment: the application.
        layout: output paths and the overwrite rule.
        weights: the weight paths the model was loaded from.
        slice_axis: the axis slice indices refer to.
    """

    def __init__(
        self,
        fragment: Fragment,
        *args: Any,
        layout: OutputLayout,
        weights: Mapping[str, Any],
        slice_axis: int,
        **kwargs: Any,
    ) -> None:
        super().__init__(fragment, *args, writer=SaveResultd(layout, weights, slice_axis), **kwargs)

    def compute(self, op_input: Any, op_output: Any, context: Any) -> None:
        """Writes the result and prints what was found (the bundle's summary lines)."""
        written = self.writer(op_input.receive(ports.PREDICTION))
        print(*describe_volume(written), sep="\n", flush=True)


class DicomSegWriterOperator(PredictionWriterOperator):
    """Writes ``NAME_seg.dcm``: a DICOM SEG of the mask referencing the instances the volume was made of.

    Named input:
        prediction: the reasoning operator's dictionary (with the volume's ``dicom_source``).

    Args:
        fragment: the application.
        layout: output paths and the overwrite rule.
    """

    def __init__(self, fragment: Fragment, *args: Any, layout: OutputLayout, **kwargs: Any) -> None:
        super().__init__(fragment, *args, writer=SaveDicomSegd(layout), **kwargs)
