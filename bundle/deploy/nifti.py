"""The NIfTI input operator: one volume per ``compute``, with its affine.

The SDK's ``NiftiDataLoader`` emits a bare array: the affine, which the mask must be written
with, is lost. This operator reads with the bundle's loader instead (nibabel, no reorientation
here, so the volume stays on the file's grid until the reasoning operator reorients it and
records the step for the way back).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from monai.deploy.core import Fragment, Operator, OperatorSpec

from bundle.deploy import ports
from bundle.inference import keys as K
from bundle.inference.inputs import NIFTI_READER, VolumeSource
from transforms.loading import LoadVolumed


class NiftiVolumeLoaderOperator(Operator):
    """Reads the NIfTI volumes of the input, one per ``compute`` call.

    Schedule it with ``CountCondition(fragment, len(volumes))``.

    Named output:
        volume: ``{"image": (1, X, Y, Z) float32 MetaTensor on the file's grid (RAS affine), "name": str}``.

    Args:
        fragment: the application.
        volumes: the files to read, in order.
    """

    def __init__(self, fragment: Fragment, *args: Any, volumes: Sequence[VolumeSource], **kwargs: Any) -> None:
        self.volumes = list(volumes)
        self._pending = iter(self.volumes)
        # axcodes=None: the file's own grid; the reasoning operator owns the (invertible) reorientation
        self._load = LoadVolumed(K.IMAGE, reader=NIFTI_READER, axcodes=None)
        super().__init__(fragment, *args, **kwargs)  # the SDK calls setup() from here: attributes first

    def setup(self, spec: OperatorSpec) -> None:
        spec.output(ports.VOLUME)

    def compute(self, op_input: Any, op_output: Any, context: Any) -> None:
        """Emits the next volume.

        Raises:
            DataError: the file is missing, unreadable or not 3D (names it).
        """
        source = next(self._pending, None)
        if source is None:  # a scheduling bug, not bad input
            raise RuntimeError(f"{self.name} ran more often than its {len(self.volumes)} volumes; use CountCondition")
        volume = self._load({K.IMAGE: str(source.path)})[K.IMAGE]
        op_output.emit({K.IMAGE: volume, K.NAME: source.name}, ports.VOLUME)
