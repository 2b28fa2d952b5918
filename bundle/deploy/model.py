"""The MediSee bundle inside the app: its configs read once, its model built once, volumes answered.

:class:`MediSeeBundle` reads the bundle's config list (with the app's weight overrides) and gives
the settings output operators need; :meth:`MediSeeBundle.build_reasoner` builds the model and the
bundle's own inferer (``inferer``: :class:`bundle.inference.SliceInferer` with its
:class:`bundle.inference.AnswerGenerator`) exactly as ``monai.bundle run`` does.
:class:`VolumeReasoner` then runs the bundle's inference steps on one volume: the preprocessing of
``configs/inference.json`` without its file reading (done by the input operators), the inferer,
``Invertd`` back to the input's grid and :class:`bundle.inference.DescribeTargetd`.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping
from functools import cached_property
from typing import Any

import torch
from monai.bundle import ConfigParser
from monai.networks.utils import eval_mode
from monai.transforms import Compose, Invertd, MapTransform, Orientationd
from monai.utils import set_determinism

from bundle.deploy.settings import BUNDLE_ROOT, ModelSettings
from bundle.engines import precision
from bundle.inference import DescribeTargetd, SliceInferer, image_intensity
from bundle.inference import keys as K
from transforms import FiniteValuesd
from transforms.loading import DEFAULT_AXCODES


class VolumeReasoner:
    """Answers a question on one volume with the bundle's model and inferer.

    Args:
        network: the MediSee model, on ``device``.
        inferer: the bundle's slice inferer (with its answer generator, if any).
        device: where the model runs.
        intensity: the bundle's CT window / MR normalisation of the ``image`` key.
        slice_axis: the axis the inferer slices along.
        autocast: ``torch.autocast`` arguments (the bundle's ``amp_kwargs`` when its ``amp`` is on), or None to
            run in the model's dtype.
    """

    def __init__(
        self,
        network: torch.nn.Module,
        inferer: SliceInferer,
        device: torch.device,
        intensity: MapTransform,
        slice_axis: int,
        autocast: Mapping[str, Any] | None = None,
    ) -> None:
        self.network, self.inferer, self.device, self.autocast = network, inferer, device, autocast
        # configs/inference.json's preprocessing after its loader: reorient (recorded), repair, window
        self.preprocessing = Compose(
            [Orientationd(K.IMAGE, axcodes=DEFAULT_AXCODES, labels=None), FiniteValuesd(K.IMAGE), intensity]
        )
        # and its postprocessing before the writers: back to the input's grid, then describe the target
        self.postprocessing = Compose(
            [
                Invertd(K.PRED, transform=self.preprocessing, orig_keys=K.IMAGE, nearest_interp=True, to_tensor=True),
                DescribeTargetd(slice_axis=slice_axis),
            ]
        )

    def __call__(self, data: Mapping[Hashable, Any]) -> dict[Hashable, Any]:
        """The prediction for a volume dictionary (``image`` on its own grid, ``name``, ``query``).

        Returns:
            ``data`` after preprocessing, plus ``pred`` (the (1, X, Y, Z) uint8 mask on the input's
            grid and affine), ``slices``, ``answer``, ``answer_slice`` and ``result``.
        """
        prepared = self.preprocessing(dict(data))
        outputs = self.infer(prepared[K.IMAGE], prepared[K.QUERY], prepared[K.NAME])
        return self.postprocessing({**prepared, **outputs})

    def infer(self, volume: torch.Tensor, query: str, name: str) -> dict[str, Any]:
        """The inferer's outputs for one preprocessed volume, as the bundle's evaluator runs it."""
        with eval_mode(self.network), precision.autocast(self.device, self.autocast is not None, self.autocast):
            return self.inferer(volume.to(self.device), self.network, query=query, name=name)


class MediSeeBundle:
    """The bundle's config list with the app's overrides, ``bundle_root`` set to the app's bundle.

    Reading it is cheap; the model is built by :meth:`build_reasoner` only.

    Args:
        settings: the config files and the config ids to override (weights).
    """

    def __init__(self, settings: ModelSettings) -> None:
        self.settings = settings
        self.parser = ConfigParser()
        self.parser.read_config([str(path) for path in settings.config_files])
        self.parser["bundle_root"] = str(BUNDLE_ROOT)  # the configs' own paths (e.g. a checkpoint), whatever the cwd
        for key, value in settings.overrides.items():
            self.parser[key] = value

    @cached_property
    def slice_axis(self) -> int:
        """The axis the bundle slices volumes along."""
        return int(self.parser.get_parsed_content("slice_axis"))

    @cached_property
    def slice_spacing_tolerance(self) -> float:
        """How far a DICOM slice may lie off a regular grid (fraction of the step; ``slice_spacing_tolerance``)."""
        return float(self.parser.get_parsed_content("slice_spacing_tolerance"))

    @cached_property
    def weights(self) -> dict[str, Any]:
        """The ``llava_path``, ``medsam_path`` and ``checkpoint`` the model is loaded from (for the result JSON)."""
        return dict(self.parser.get_parsed_content("weights"))

    def build_reasoner(self) -> VolumeReasoner:
        """Builds the model and the bundle's inferer (seeded as the bundle's ``initialize`` does).

        Raises:
            RuntimeError: from MONAI's config parser, with the :class:`common.errors.MediSeeError`
                (missing weights, bad settings) as its cause.
        """
        parse = self.parser.get_parsed_content
        set_determinism(seed=parse("seed"))  # before the model exists: untrained parts are drawn at random
        intensity = image_intensity(parse("window"), parse("a_min"), parse("a_max"))
        return VolumeReasoner(
            network=parse("network"),
            inferer=parse("inferer"),
            device=parse("device"),
            intensity=intensity,
            slice_axis=self.slice_axis,
            autocast=parse("amp_kwargs") if parse("amp") else None,
        )
